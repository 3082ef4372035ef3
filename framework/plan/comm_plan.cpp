#include "plan/comm_plan.h"

#include <algorithm>
#include <set>

#include "train/step_batch.h"

namespace angle::plan {
namespace {

// The token ids the word-embedding lookup sees for these rows: the packed real tokens, or every
// padded position (pad ids included) when the batch is nearly dense (model/bert.cpp's rule) or
// the model is a decoder (always padded); a rank without rows looks up its dummy row.
struct Lookup {
  int64_t count = 0;
  std::set<int64_t> unique;
};
Lookup lookup_of(std::vector<const std::vector<int64_t>*> rows, const std::vector<int64_t>& dummy, int64_t pad_id,
                 bool packs) {
  if (rows.empty()) rows = {&dummy};
  Lookup l;
  int64_t tokens = 0, longest = 0;
  for (const auto* r : rows) {
    tokens += static_cast<int64_t>(r->size()), longest = std::max<int64_t>(longest, static_cast<int64_t>(r->size()));
    l.unique.insert(r->begin(), r->end());
  }
  const int64_t padded = static_cast<int64_t>(rows.size()) * longest;
  const bool dense = !packs || tokens * 10 >= padded * 9;
  l.count = dense ? padded : tokens;
  if (dense && padded > tokens) l.unique.insert(pad_id);
  return l;
}

}  // namespace

std::map<std::string, uint64_t> CommBytes::by_phase() const {
  std::map<std::string, uint64_t> phases;
  for (const Call& c : calls) phases[c.phase] += c.bytes;
  return phases;
}

uint64_t CommBytes::total() const {
  uint64_t t = 0;
  for (const Call& c : calls) t += c.bytes;
  return t;
}

void add_stage3_gathers(CommBytes& out, const ModelShape& shape, const ShardSettings& s, bool backward) {
  const size_t end = shape.units.size() - (backward ? 1 : 0);
  for (size_t u = 1; u < end; ++u)
    for (int64_t numel : {shape.units[u].numel(), shape.units[u].frozen})
      if (numel > 0)
        out.calls.push_back({backward ? "backward" : "forward", "all_gather",
                             static_cast<uint64_t>((numel + s.ranks - 1) / s.ranks * s.param_bytes)});
}

CommBytes step_comm_bytes(const CommSetup& setup, int rank, long step) {
  const train::JobConfig& c = *setup.job;
  const ModelShape& shape = *setup.shape;
  const ShardSettings& s = setup.shard;
  const int64_t n = s.ranks, k = loss::rows_per_example(setup.data->format()), h = shape.hidden;
  CommBytes out;
  auto add = [&](const char* phase, const char* op, uint64_t bytes) { out.calls.push_back({phase, op, bytes}); };
  auto gather = [&](const char* phase, uint64_t bytes) { add(phase, "all_gather", bytes); };
  const size_t micro = static_cast<size_t>(c.global_batch / c.grad_accum);
  std::vector<std::vector<std::vector<data::Example>>> slices;  // [rank][micro-batch]
  for (int r = 0; r < n; ++r) slices.push_back(setup.data->rank_slices(step, r, static_cast<int>(n), micro));
  const std::vector<int64_t>& dummy = setup.empty_text_ids;
  // Each unit's shard: its parameters padded to a multiple of n, over n.
  std::vector<int64_t> unit_shards;
  for (const UnitShape& u : shape.units) unit_shards.push_back((u.numel() + n - 1) / n);
  // Stages 2/3 reduce each dense parameter's gradient in one piece per owner its range spans.
  std::vector<uint64_t> dense_pieces;  // bytes of each piece
  for (size_t u = 0; u < shape.units.size(); ++u) {
    if (shape.units[u].sparse) continue;
    int64_t begin = 0;
    for (int64_t numel : shape.units[u].param_numels) {
      const int64_t end = begin + numel;
      for (int64_t owner = begin / unit_shards[u]; owner <= (end - 1) / unit_shards[u]; ++owner) {
        const int64_t from = std::max(begin, owner * unit_shards[u]), to = std::min(end, (owner + 1) * unit_shards[u]);
        dense_pieces.push_back(static_cast<uint64_t>((to - from) * s.reduce_bytes));
      }
      begin = end;
    }
  }
  const bool packs = !shape.decoder, words_train = shape.units.front().numel() > 0;
  auto lookup = [&](const std::vector<const std::vector<int64_t>*>& rows) {
    return lookup_of(rows, dummy, setup.pad_id, packs);
  };
  for (size_t m = 0; m < slices[0].size(); ++m) {
    // Batch: the duplicate filter's exchange (a count, then k hashes and a flag per example).
    gather("batch", 8), gather("batch", 8 * (k + 1) * slices[rank][m].size());
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
    std::vector<std::vector<const std::vector<int64_t>*>> rows(n);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < slices[r][m].size(); ++i)
        if (keep[first_of_rank[r] + i])
          for (const auto& ids : slices[r][m][i].ids) rows[r].push_back(&ids);
    const int64_t chunk_rows = c.chunk > 0 ? c.chunk * k : 0;
    int64_t chunks = 1;
    if (c.chunk > 0)
      for (int r = 0; r < n; ++r)
        chunks = std::max<int64_t>(chunks, (static_cast<int64_t>(rows[r].size()) / k + c.chunk - 1) / c.chunk);
    auto chunk_of = [&](int r, int64_t i) {
      if (chunk_rows == 0) return rows[r];
      const auto size = static_cast<int64_t>(rows[r].size());
      const int64_t begin = std::min(size, i * chunk_rows), end = std::min(size, begin + chunk_rows);
      return std::vector<const std::vector<int64_t>*>(rows[r].begin() + begin, rows[r].begin() + end);
    };
    // One forward: stage 3 gathers units and looks up the word-embedding rows of every rank.
    auto forward = [&](int64_t i) {
      if (s.stage < 3) return;
      std::set<int64_t> all;
      for (int r = 0; r < n; ++r) {
        const std::set<int64_t> mine = lookup(chunk_of(r, i)).unique;
        if (r == rank) gather("forward", 8), gather("forward", 8 * mine.size());
        all.insert(mine.begin(), mine.end());
      }
      add("forward", "all_reduce", all.size() * h * s.param_bytes);
      add_stage3_gathers(out, shape, s, false);
      return;
    };
    // One backward: stages 2/3 reduce every dense gradient and all-gather the word-embedding rows
    // (when they train).
    auto backward = [&](int64_t i) {
      if (s.stage == 1) return;
      for (const uint64_t bytes : dense_pieces) add("backward", "reduce", bytes);
      int64_t word_rows = lookup(chunk_of(rank, i)).count;
      if (s.stage == 3) {
        std::set<int64_t> all;
        for (int r = 0; r < n; ++r) {
          const std::set<int64_t> mine = lookup(chunk_of(r, i)).unique;
          all.insert(mine.begin(), mine.end());
        }
        word_rows = static_cast<int64_t>(all.size());
        add_stage3_gathers(out, shape, s, true);
      }
      if (words_train)
        gather("backward", 8), gather("backward", 8 * word_rows), gather("backward", word_rows * h * s.reduce_bytes);
    };
    const int64_t kept = static_cast<int64_t>(rows[rank].size()) / k;
    auto loss = [&]() {
      if (c.local_negatives && n > 1) return add("loss", "all_reduce", 8);
      if (n > 1) gather("loss", kept * k * h * 4);  // the embeddings (float32)
      gather("loss", kept * 4);                     // labels
      if (setup.data->weighted()) gather("loss", kept * 4);
    };
    int64_t global_rows = 0;
    for (int r = 0; r < n; ++r) global_rows += static_cast<int64_t>(rows[r].size());
    out.loss_bytes = std::max(out.loss_bytes, loss_bytes(shape, global_rows, global_rows));
    for (int64_t i = 0; i < chunks; ++i) {
      ForwardShape f{0, 0, 0, setup.dropout, setup.adapter_dropout};
      for (const auto* row : chunk_of(rank, i)) {
        ++f.rows, f.tokens += static_cast<int64_t>(row->size());
        f.longest = std::max<int64_t>(f.longest, static_cast<int64_t>(row->size()));
      }
      if (const int64_t bytes = activation_bytes(shape, f); bytes > out.activation_bytes)
        out.activation_bytes = bytes, out.activation_rows = f.rows;
    }
    double tokens = 0, squares = 0;
    for (const auto* row : rows[rank]) {
      const auto len = static_cast<double>(row->size());
      tokens += len, squares += len * len;
    }
    const double flops = shape.train_flops(tokens, squares);  // forward 1/3, backward 2/3
    out.forward_flops += flops / 3 * (c.chunk > 0 ? 2 : 1), out.backward_flops += flops * 2 / 3;
    out.rows_per_forward = std::max<double>(1, c.chunk > 0 ? std::min<double>(chunk_rows, rows[rank].size())
                                                            : static_cast<double>(rows[rank].size()));
    if (c.chunk == 0) {
      forward(0), loss(), backward(0);
    } else {
      for (int64_t i = 0; i < chunks; ++i) forward(i);
      loss();
      for (int64_t i = 0; i < chunks; ++i) forward(i), backward(i);
    }
  }
  // Step: stage 1 reduce-scatters the gradient (several ranks or bf16), every stage sums the norm,
  // stages 1/2 gather the updated parameters (units with nothing to train skip both); then the
  // stop-signal sum (several ranks).
  for (size_t u = 0; u < shape.units.size(); ++u)
    if (s.stage == 1 && (n > 1 || s.reduce_bytes != 4) && unit_shards[u] > 0)
      add("step", "reduce_scatter", unit_shards[u] * n * s.reduce_bytes);
  add("step", "all_reduce", 8);
  if (s.stage < 3)
    for (size_t u = 0; u < shape.units.size(); ++u)
      if (unit_shards[u] > 0) gather("step", unit_shards[u] * s.param_bytes);
  if (n > 1) add("step", "all_reduce", 8);
  return out;
}

}  // namespace angle::plan
