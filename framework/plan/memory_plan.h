// The memory half of `angle plan` (formulas in README "Planning"): the model-state bytes one rank
// holds at its peak for a sharding stage, exactly as the sharder allocates them (shard/fsdp.cpp),
// plus the bounded transients (gradients in flight); frozen weights in the parameter dtype.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model_shape.h"

namespace angle::plan {

struct ShardSettings {
  int stage = 2;
  int64_t ranks = 1;
  int64_t replicas = 1;  // shard.replicate: groups of ranks / replicas ranks hold one sharded copy each
  int64_t param_bytes = 4, reduce_bytes = 4;  // 4 (fp32) or 2 (bf16)
  int64_t inflight_bytes = 12 << 20;
  double bucket_mb = 0;  // shard.bucket_mb (0: one bucket per unit)
  bool dense_words = false;  // the word embeddings' gradient goes as a dense matrix (many ranks' rows)
  int64_t group() const { return ranks / replicas; }  // the ranks that shard one copy
  // The word embeddings at stages 2, 3: looked up by rows, held as a shard (UnitState::rows_only).
  bool rows_only(const model::UnitShape& u) const { return u.sparse && stage >= 2; }
  // Nothing to send: every gradient is added where it arrives (StagePolicy::adds_grads_locally).
  bool adds_locally() const { return stage == 1 || (ranks == 1 && reduce_bytes == 4); }
};

// A bucket of gradients the sharder reduce-scatters at stages 2, 3 (shard/reducer.h): the bytes
// every rank hands over (the bucket) and those of the piece that lands at shard position
// `position` (with replicas, then all-reduced across them). Units last to first; a unit's
// parameters last to first, cut at shard.bucket_mb (the trainer cuts them in the order autograd
// delivers them: the same bytes per unit, perhaps other cuts).
struct GradientBucket {
  uint64_t send = 0, piece = 0;
};
std::vector<GradientBucket> gradient_buckets(const model::ModelShape& shape, const ShardSettings& s, int64_t position);

struct StateBytes {
  int64_t params = 0, grads = 0, optim = 0;
  int64_t total() const { return params + grads + optim; }
};

// Per rank, at the peak of a step.
StateBytes state_peak(const model::ModelShape& shape, const ShardSettings& s);

// The peak resident bytes of a rank: the runtime and data it holds before the model, then the
// larger of loading (each rank reads its slices of the weights into the sharder's state: no rank
// builds the whole model) and a step (model state, one forward's activations, the loss). Freed
// memory stays resident in glibc's heap where later allocations do not reuse it exactly: a factor
// on the activations (varying shapes), measured on this machine (README "Planning"); DeepSpeed's
// estimators use an "additional buffer factor" of 1.5 for the same reason.
constexpr double kHeapOverhead = 1.15;
struct PeakBytes {
  int64_t runtime = 0, load = 0, state = 0, activations = 0, loss = 0;
  int64_t step() const;  // state + kHeapOverhead x (activations + loss)
  int64_t total() const;
};
PeakBytes peak_bytes(const model::ModelShape& shape, const ShardSettings& s, int64_t runtime, int64_t activations,
                     int64_t loss);

}  // namespace angle::plan
