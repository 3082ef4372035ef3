#include "plan/memory_plan.h"

#include <algorithm>
#include <climits>

namespace angle::plan {

std::vector<GradientBucket> gradient_buckets(const model::ModelShape& shape, const ShardSettings& s, int64_t position) {
  std::vector<GradientBucket> out;
  const int64_t n = s.group();
  const int64_t limit = s.bucket_mb > 0 ? static_cast<int64_t>(s.bucket_mb * (1 << 20)) / s.reduce_bytes : INT64_MAX;
  for (size_t u = shape.units.size(); u-- > 0;) {
    const model::UnitShape& unit = shape.units[u];
    if (unit.sparse || unit.numel() == 0) continue;
    const int64_t shard = (unit.numel() + n - 1) / n, mine_begin = position * shard, mine_end = mine_begin + shard;
    std::vector<int64_t> offsets{0};
    for (int64_t numel : unit.param_numels) offsets.push_back(offsets.back() + numel);
    int64_t elements = 0, piece = 0;
    auto close = [&]() {
      out.push_back({static_cast<uint64_t>(elements * s.reduce_bytes), static_cast<uint64_t>(piece * s.reduce_bytes)});
      elements = piece = 0;
    };
    for (size_t p = unit.param_numels.size(); p-- > 0;) {
      if (elements > 0 && elements + unit.param_numels[p] > limit) close();
      elements += unit.param_numels[p];
      piece += std::max<int64_t>(0, std::min(offsets[p + 1], mine_end) - std::max(offsets[p], mine_begin));
    }
    close();
  }
  return out;
}

StateBytes state_peak(const model::ModelShape& shape, const ShardSettings& s) {
  StateBytes b;
  const int64_t n = s.group();
  int64_t padded = 0, shard = 0, largest_gathered = 0, buckets = 0;  // padded: stage 1's local gradient
  for (const model::UnitShape& u : shape.units) {
    const int64_t p = (u.numel() + n - 1) / n * n;
    padded += p, shard += p / n;
    if (!u.sparse) largest_gathered = std::max(largest_gathered, (u.numel() + u.frozen + n - 1) / n * n);
  }
  // A bucket's send buffer, and (unless its sum lands in the shard gradient: fp32, one bucket per
  // unit, no replicas) the piece it receives.
  const bool receives = s.replicas > 1 || s.reduce_bytes != 4 || s.bucket_mb > 0;
  int64_t largest_send = 0, largest_piece = 0;
  for (const GradientBucket& g : gradient_buckets(shape, s, 0)) {
    const int64_t send = static_cast<int64_t>(g.send);
    const int64_t piece = receives ? (send / s.reduce_bytes + n - 1) / n * s.reduce_bytes : 0;
    largest_send = std::max(largest_send, send), largest_piece = std::max(largest_piece, piece);
    buckets += send + piece;
  }
  // Stages 1, 2 hold every unit gathered, but for the word embeddings at stage 2 (looked up by
  // rows: their shard only).
  int64_t gathered = 0, gathered_shard = 0, frozen_held = 0;
  for (const model::UnitShape& u : shape.units) {
    const int64_t p = (u.numel() + n - 1) / n * n, f = (u.frozen + n - 1) / n * n;
    const bool whole = s.stage < 3 && !s.rows_only(u);
    if (whole) gathered += p, gathered_shard += p / n;
    frozen_held += whole ? f : f / n;  // LoRA's base, in the parameter dtype
  }
  b.optim = 2 * 4 * shard;  // AdamW moments, fp32, this rank's slice
  const bool views = s.stage < 3 && s.param_bytes == 4;  // the gathered fp32 buffers are the master
  if (views) b.params = 4 * gathered + 4 * (shard - gathered_shard);
  else if (s.stage < 3) b.params = 4 * shard + s.param_bytes * gathered;
  else b.params = 4 * shard + 2 * s.param_bytes * largest_gathered;  // a unit and the prefetched next
  b.params += s.param_bytes * frozen_held;
  if (s.stage == 1) {
    // The whole local gradient; at the step (several ranks or bf16) the reduce-scattered shards.
    const bool scatter = s.ranks > 1 || s.reduce_bytes != 4;
    b.grads = 4 * padded + (scatter ? s.reduce_bytes * shard + (s.reduce_bytes != 4 ? s.reduce_bytes * padded : 0) : 0);
  } else {
    // This rank's shard, plus the buckets in flight and the one being filled: a bucket starts only
    // once those in flight leave it room within shard.inflight_mb (or none is left), its received
    // piece comes at its reduction; never more than all of them.
    int64_t transient =
        s.adds_locally() ? 0 : std::min(std::max(s.inflight_bytes, largest_send) + largest_piece, buckets);
    // The word embeddings' rows summed into a dense fp32 matrix, sent in reduce_dtype, its shard received.
    const model::UnitShape& words = shape.units.front();
    const int64_t words_padded = (words.numel() + n - 1) / n * n;
    if (s.dense_words && !s.adds_locally())
      transient = std::max(transient, 4 * words_padded + (s.reduce_bytes != 4 ? s.reduce_bytes * words_padded : 0) +
                                           s.reduce_bytes * words_padded / n);
    b.grads = 4 * shard + transient;
  }
  return b;
}

int64_t PeakBytes::step() const {
  return state + static_cast<int64_t>(kHeapOverhead * static_cast<double>(activations + loss));
}

int64_t PeakBytes::total() const { return runtime + std::max(load, step()); }

PeakBytes peak_bytes(const model::ModelShape& shape, const ShardSettings& s, int64_t runtime, int64_t activations,
                     int64_t loss) {
  const StateBytes state = state_peak(shape, s);
  // Loading: each rank reads only its slices of the weights into the sharder's state (and, at
  // stages 1 and 2, gathers the full parameters that state holds anyway); the transients are one
  // unit's slice, within the heap overhead. No model is built whole, so none is left in the heap.
  return {runtime, state.total(), state.total(), activations, loss};
}

}  // namespace angle::plan
