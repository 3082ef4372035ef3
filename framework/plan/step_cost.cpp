#include "plan/step_cost.h"

#include <algorithm>
#include <set>

#include "train/step_batch.h"

namespace angle::plan {
namespace {

using Rows = std::vector<const std::vector<int64_t>*>;

// The token ids the word-embedding lookup sees for these rows: the packed real tokens, or every
// padded position (pad ids included) when the batch is nearly dense (model/bert.cpp's rule) or
// the model is a decoder (always padded); a rank without rows looks up its dummy row.
struct Lookup {
  int64_t count = 0;
  std::set<int64_t> unique;
};
Lookup lookup_of(Rows rows, const std::vector<int64_t>& dummy, int64_t pad_id, bool packs) {
  if (rows.empty()) rows = {&dummy};
  Lookup l;
  int64_t tokens = 0, longest = 0;
  for (const auto* r : rows) {
    tokens += static_cast<int64_t>(r->size()), longest = std::max<int64_t>(longest, static_cast<int64_t>(r->size()));
    l.unique.insert(r->begin(), r->end());
  }
  const int64_t padded = static_cast<int64_t>(rows.size()) * longest;
  const bool dense = !packs || model::runs_padded(tokens, padded);
  l.count = dense ? padded : tokens;
  if (dense && padded > tokens) l.unique.insert(pad_id);
  return l;
}

// The step's examples on every rank and, per micro-batch, the rows each rank keeps after the
// duplicate filter (pointers into `slices`), cut into chunks with gradient caching.
struct StepRows {
  std::vector<std::vector<std::vector<data::Example>>> slices;  // [rank][micro-batch]
  std::vector<std::vector<Rows>> kept;                          // [micro-batch][rank], in order
  std::vector<int64_t> chunks;                                  // [micro-batch]: forward passes (chunks)
  int64_t k = 2;                                                // rows per example
  int64_t chunk_rows = 0;                                       // rows per chunk (0: no gradient caching)

  StepRows(const StepSetup& setup, long step);
  StepRows(const StepRows&) = delete;
  StepRows& operator=(const StepRows&) = delete;

  // Rank r's rows of chunk i of micro-batch m (all of them without gradient caching).
  Rows chunk_of(size_t m, int r, int64_t i) const {
    return chunk_rows == 0 ? kept[m][r] : train::chunk_of(kept[m][r], chunk_rows, i);
  }
};

StepRows::StepRows(const StepSetup& setup, long step) {
  const train::JobConfig& c = *setup.job;
  const int64_t n = setup.shard.ranks;
  k = loss::rows_per_example(setup.data->format());
  const size_t micro = static_cast<size_t>(c.global_batch / c.grad_accum);
  for (int r = 0; r < n; ++r) slices.push_back(setup.data->rank_slices(step, r, static_cast<int>(n), micro));
  chunk_rows = c.chunk > 0 ? c.chunk * k : 0;
  for (size_t m = 0; m < slices[0].size(); ++m) {
    std::vector<uint64_t> hashes;
    std::vector<bool> active;
    std::vector<int64_t> first_of_rank;
    for (int r = 0; r < n; ++r) {
      first_of_rank.push_back(static_cast<int64_t>(active.size()));
      for (const data::Example& e : slices[r][m]) {
        for (const auto& ids : e.ids) hashes.push_back(train::hash_ids(ids));
        active.push_back(e.weight > 0);
      }
    }
    const std::vector<bool> keep = c.filter_duplicate ? train::duplicate_filter(hashes, static_cast<size_t>(k), active)
                                                      : std::vector<bool>(active.size(), true);
    // Every rank's kept rows, in order; the rank's chunks (gradient caching).
    std::vector<Rows> rows(n);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < slices[r][m].size(); ++i)
        if (keep[first_of_rank[r] + i])
          for (const auto& ids : slices[r][m][i].ids) rows[r].push_back(&ids);
    std::vector<int64_t> kept_per_rank;
    for (const Rows& mine : rows) kept_per_rank.push_back(static_cast<int64_t>(mine.size()) / k);
    kept.push_back(std::move(rows));
    chunks.push_back(c.chunk > 0 ? train::chunk_passes(kept_per_rank, c.chunk) : 1);
  }
}

// The distinct word-embedding rows the ranks [first, first + count) look up in chunk i of
// micro-batch m (a shard group's: stages 2, 3 look rows up for the whole group).
std::set<int64_t> group_rows(const StepSetup& setup, const StepRows& rows, size_t m, int64_t i, int64_t first,
                             int64_t count) {
  std::set<int64_t> all;
  for (int64_t r = first; r < first + count; ++r) {
    const std::set<int64_t> mine =
        lookup_of(rows.chunk_of(m, static_cast<int>(r), i), setup.empty_text_ids, setup.pad_id, !setup.shape->decoder)
            .unique;
    all.insert(mine.begin(), mine.end());
  }
  return all;
}

// Backward's calls for the word embeddings' gradient (stages 2, 3, when they train and more than
// one rank takes part): each rank holds the rows its group looked up; a count is exchanged, then
// the rows are all-gathered, or once all ranks' rows outnumber the vocabulary the dense matrix is
// reduce-scattered (and all-reduced across replicas).
void add_word_gradient_calls(std::vector<Call>& calls, const StepSetup& setup, const StepRows& rows, size_t m,
                             int64_t i, int rank, bool& dense_words) {
  const ShardSettings& s = setup.shard;
  const model::ModelShape& shape = *setup.shape;
  const int64_t g = s.group();
  int64_t total = 0, mine = 0;
  for (int64_t first = 0; first < s.ranks; first += g) {
    const int64_t rows_of_group = static_cast<int64_t>(group_rows(setup, rows, m, i, first, g).size());
    total += g * rows_of_group;
    if (rank >= first && rank < first + g) mine = rows_of_group;
  }
  calls.push_back({"backward", "all_gather", 8, Among::world, true});
  if (total < shape.vocab) {
    calls.push_back({"backward", "all_gather", static_cast<uint64_t>(8 * mine), Among::world, true});
    calls.push_back({"backward", "all_gather", static_cast<uint64_t>(mine * shape.hidden * s.reduce_bytes),
                     Among::world, true});
    return;
  }
  dense_words = true;
  const uint64_t shard = static_cast<uint64_t>((shape.units.front().numel() + g - 1) / g * s.reduce_bytes);
  calls.push_back({"backward", "reduce_scatter", shard * static_cast<uint64_t>(g), Among::shard});
  if (s.replicas > 1) calls.push_back({"backward", "all_reduce", shard, Among::replica});
}

// The rank's calls in micro-batch m: the duplicate filter's exchange, then forward, loss and
// backward (with gradient caching every chunk's forward, the loss, every chunk's forward again
// with its backward).
void add_micro_batch_traffic(std::vector<Call>& calls, const StepSetup& setup, const StepRows& rows, size_t m,
                             int rank, const std::vector<GradientBucket>& buckets, bool& dense_words) {
  const train::JobConfig& c = *setup.job;
  const model::ModelShape& shape = *setup.shape;
  const ShardSettings& s = setup.shard;
  const int64_t n = s.ranks, k = rows.k, h = shape.hidden;
  const int64_t first = rank / s.group() * s.group();  // the rank's shard group
  auto add = [&](const char* phase, const char* op, uint64_t bytes, Among among = Among::world) {
    calls.push_back({phase, op, bytes, among});
  };
  auto gather = [&](const char* phase, uint64_t bytes, Among among = Among::world) {  // rows
    calls.push_back({phase, "all_gather", bytes, among, true});
  };
  const bool packs = !shape.decoder, words_train = shape.units.front().numel() > 0;
  auto lookup = [&](const Rows& r) { return lookup_of(r, setup.empty_text_ids, setup.pad_id, packs); };
  // Batch: the duplicate filter's exchange (a count, then k hashes and a flag per example).
  gather("batch", 8), gather("batch", 8 * (k + 1) * rows.slices[rank][m].size());
  // One forward: stages 2, 3 look up the word-embedding rows of the group's ranks (the matrix stays
  // sharded); stage 3 gathers the other units.
  auto forward = [&](int64_t i) {
    if (s.stage < 2) return;
    const int64_t mine = static_cast<int64_t>(lookup(rows.chunk_of(m, rank, i)).unique.size());
    gather("forward", 8, Among::shard), gather("forward", 8 * mine, Among::shard);
    add("forward", "all_reduce", group_rows(setup, rows, m, i, first, s.group()).size() * h * s.param_bytes,
        Among::shard);
    if (s.stage == 3) add_stage3_gathers(calls, shape, s, false);
  };
  // One backward: stages 2/3 reduce-scatter every bucket of dense gradients (with replicas, then
  // all-reduce the rank's piece across them) and the word embeddings' rows.
  auto backward = [&](int64_t i) {
    if (s.stage == 1) return;
    for (const GradientBucket& b : buckets)
      if (!s.adds_locally()) {
        add("backward", "reduce_scatter", b.send, Among::shard);
        if (s.replicas > 1) add("backward", "all_reduce", b.piece, Among::replica);
      }
    if (s.stage == 3) add_stage3_gathers(calls, shape, s, true);
    if (words_train && !s.adds_locally()) add_word_gradient_calls(calls, setup, rows, m, i, rank, dense_words);
  };
  const int64_t kept = static_cast<int64_t>(rows.kept[m][rank].size()) / k;
  auto loss = [&]() {
    if (c.local_negatives && n > 1) return add("loss", "all_reduce", 8);
    if (n > 1) gather("loss", kept * k * h * 4);  // the embeddings (float32)
    gather("loss", kept * 4);                     // labels
    if (setup.data->weighted()) gather("loss", kept * 4);
  };
  if (c.chunk == 0) {
    forward(0), loss(), backward(0);
  } else {
    for (int64_t i = 0; i < rows.chunks[m]; ++i) forward(i);
    loss();
    for (int64_t i = 0; i < rows.chunks[m]; ++i) forward(i), backward(i);
  }
}

// The optimizer step's calls: stage 1 reduce-scatters the gradient (several ranks or bf16; with
// replicas, then all-reduces the shard across them), the group sums the norm, stages 1/2 gather
// the updated parameters (overlapping the next forward; units with nothing to train skip all of
// these, stage 2 the word embeddings, looked up by rows); then the stop-signal sum (several ranks).
void add_optimizer_step_traffic(std::vector<Call>& calls, const model::ModelShape& shape, const ShardSettings& s,
                                const std::vector<int64_t>& unit_shards) {
  const int64_t g = s.group();
  auto add = [&](const char* op, uint64_t bytes, Among among) { calls.push_back({"step", op, bytes, among}); };
  for (size_t u = 0; u < shape.units.size(); ++u)
    if (s.stage == 1 && (s.ranks > 1 || s.reduce_bytes != 4) && unit_shards[u] > 0) {
      add("reduce_scatter", unit_shards[u] * g * s.reduce_bytes, Among::shard);
      if (s.replicas > 1) add("all_reduce", unit_shards[u] * s.reduce_bytes, Among::replica);
    }
  add("all_reduce", 8, Among::shard);
  // Stages 1, 2 gather the updated parameters again: issued now, waited for in the next forward.
  if (s.stage < 3)
    for (size_t u = 0; u < shape.units.size(); ++u)
      if (unit_shards[u] > 0 && !s.rows_only(shape.units[u])) calls.push_back({"forward", "all_gather", static_cast<uint64_t>(unit_shards[u] * s.param_bytes), Among::shard});
  if (s.ranks > 1) add("all_reduce", 8, Among::world);
}

// The rank's collective calls in the step, in the order it issues them.
std::vector<Call> rank_traffic(const StepSetup& setup, const StepRows& rows, int rank, bool& dense_words) {
  const model::ModelShape& shape = *setup.shape;
  const int64_t g = setup.shard.group();
  // Each unit's shard: its parameters padded to a multiple of the group, over the group.
  std::vector<int64_t> unit_shards;
  for (const model::UnitShape& u : shape.units) unit_shards.push_back((u.numel() + g - 1) / g);
  const std::vector<GradientBucket> buckets = gradient_buckets(shape, setup.shard, rank % g);
  std::vector<Call> calls;
  for (size_t m = 0; m < rows.kept.size(); ++m)
    add_micro_batch_traffic(calls, setup, rows, m, rank, buckets, dense_words);
  add_optimizer_step_traffic(calls, shape, setup.shard, unit_shards);
  return calls;
}

// The activation bytes of the rank's largest forward (and its rows) and the bytes of the largest
// loss (every rank computes it on all ranks' rows) over the step's micro-batches.
void count_forward_and_loss_bytes(StepCost& out, const StepSetup& setup, const StepRows& rows, int rank) {
  const model::ModelShape& shape = *setup.shape;
  for (size_t m = 0; m < rows.kept.size(); ++m) {
    int64_t global_rows = 0;
    for (const Rows& r : rows.kept[m]) global_rows += static_cast<int64_t>(r.size());
    out.loss_bytes = std::max(out.loss_bytes, loss_bytes(shape, global_rows, global_rows));
    for (int64_t i = 0; i < rows.chunks[m]; ++i) {
      ForwardShape f{0, 0, 0, setup.dropout, setup.adapter_dropout};
      for (const auto* row : rows.chunk_of(m, rank, i)) {
        ++f.rows, f.tokens += static_cast<int64_t>(row->size());
        f.longest = std::max<int64_t>(f.longest, static_cast<int64_t>(row->size()));
      }
      if (const int64_t bytes = activation_bytes(shape, f); bytes > out.activation_bytes)
        out.activation_bytes = bytes, out.activation_rows = f.rows;
    }
  }
}

// The model FLOPs of the rank's rows, forward (twice with gradient caching) and backward, and
// its rows per forward pass (the last micro-batch's).
void count_flops(StepCost& out, const StepSetup& setup, const StepRows& rows, int rank) {
  const train::JobConfig& c = *setup.job;
  for (size_t m = 0; m < rows.kept.size(); ++m) {
    const Rows& mine = rows.kept[m][rank];
    const double flops = setup.shape->train_cost(mine).flops;  // forward 1/3, backward 2/3
    out.forward_flops += flops / 3 * (c.chunk > 0 ? 2 : 1), out.backward_flops += flops * 2 / 3;
    out.rows_per_forward = std::max<double>(1, c.chunk > 0 ? std::min<double>(rows.chunk_rows, mine.size())
                                                            : static_cast<double>(mine.size()));
  }
}

}  // namespace

std::map<std::string, uint64_t> StepCost::by_phase() const {
  std::map<std::string, uint64_t> phases;
  for (const Call& c : calls) phases[c.phase] += c.bytes;
  return phases;
}

uint64_t StepCost::total() const {
  uint64_t t = 0;
  for (const Call& c : calls) t += c.bytes;
  return t;
}

void add_stage3_gathers(std::vector<Call>& calls, const model::ModelShape& shape, const ShardSettings& s,
                        bool backward) {
  const size_t end = shape.units.size() - (backward ? 1 : 0);
  for (size_t u = 1; u < end; ++u)
    for (int64_t numel : {shape.units[u].numel(), shape.units[u].frozen})
      if (numel > 0)
        calls.push_back({backward ? "backward" : "forward", "all_gather",
                         static_cast<uint64_t>((numel + s.group() - 1) / s.group() * s.param_bytes), Among::shard});
}

StepCost rank_step_cost(const StepSetup& setup, int rank, long step) {
  const StepRows rows(setup, step);
  StepCost out;
  out.calls = rank_traffic(setup, rows, rank, out.dense_words);
  count_forward_and_loss_bytes(out, setup, rows, rank);
  count_flops(out, setup, rows, rank);
  return out;
}

}  // namespace angle::plan
