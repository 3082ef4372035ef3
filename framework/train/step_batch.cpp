#include "train/step_batch.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <unordered_set>

#include "core/error.h"
#include "train/dropout_keys.h"

namespace angle::train {

uint64_t hash_ids(const std::vector<int64_t>& ids) {
  uint64_t h = 1469598103934665603ULL;
  for (int64_t id : ids)
    for (int byte = 0; byte < 8; ++byte) h = (h ^ ((static_cast<uint64_t>(id) >> (8 * byte)) & 0xff)) * 1099511628211ULL;
  return h;
}

std::vector<bool> duplicate_filter(const std::vector<uint64_t>& text_hashes, size_t texts_per_example,
                                   const std::vector<bool>& active) {
  std::unordered_set<uint64_t> seen;
  std::vector<bool> keep(text_hashes.size() / texts_per_example, true);
  for (size_t e = 0; e < keep.size(); ++e)
    for (size_t t = 0; t < texts_per_example && active[e]; ++t)
      if (!seen.insert(text_hashes[e * texts_per_example + t]).second) {
        keep[e] = false;
        break;
      }
  return keep;
}

int64_t StepBatch::global_kept() const { return std::accumulate(kept_per_rank.begin(), kept_per_rank.end(), int64_t{0}); }

std::vector<int64_t> StepBatch::rows_per_rank() const {
  std::vector<int64_t> rows;
  for (int64_t k : kept_per_rank) rows.push_back(k * rows_per_example);
  return rows;
}

at::Tensor StepBatch::local_text_hashes(int rank) const {
  const std::vector<int64_t> rows = rows_per_rank();
  const int64_t begin = std::accumulate(rows.begin(), rows.begin() + rank, int64_t{0});
  return text_hashes.narrow(0, begin, rows[rank]);
}

StepBatch assemble_batch(const std::vector<data::Example>& examples, int64_t rows_per_example, bool filter_duplicate,
                         comm::Comm& comm) {
  const int rank = comm.rank(), world = comm.size();
  // Ranks exchange text hashes and whether the example has a weight (which also tells every rank
  // every other rank's example count): per example k hashes, then 1 (weight > 0) or 0.
  const int64_t stride = rows_per_example + 1;
  std::vector<int64_t> local;
  for (const auto& e : examples) {
    ANGLE_CHECK(static_cast<int64_t>(e.ids.size()) == rows_per_example, "expected ", rows_per_example,
                " texts per example, got ", e.ids.size());
    for (const auto& ids : e.ids) local.push_back(static_cast<int64_t>(hash_ids(ids)));
    local.push_back(e.weight > 0 ? 1 : 0);
  }
  std::vector<int64_t> counts;
  at::Tensor gathered = comm.all_gather_rows(at::tensor(local, at::kLong).to(comm.device()), &counts).cpu();
  const int64_t* all = gathered.data_ptr<int64_t>();
  const int64_t global_examples = gathered.numel() / stride;
  std::vector<uint64_t> hashes;
  std::vector<bool> active;
  for (int64_t e = 0; e < global_examples; ++e) {
    for (int64_t t = 0; t < rows_per_example; ++t) hashes.push_back(static_cast<uint64_t>(all[e * stride + t]));
    active.push_back(all[e * stride + rows_per_example] != 0);
  }
  const size_t k = static_cast<size_t>(rows_per_example);
  std::vector<bool> keep_all = filter_duplicate ? duplicate_filter(hashes, k, active) : std::vector<bool>(active.size(), true);

  StepBatch batch;
  batch.rows_per_example = rows_per_example;
  batch.kept_per_rank.resize(world);
  int64_t my_begin = 0;
  for (int r = 0, at = 0; r < world; ++r) {
    const int64_t examples_of_r = counts[r] / stride;
    if (r == rank) my_begin = at;
    batch.kept_per_rank[r] = std::count(keep_all.begin() + at, keep_all.begin() + at + examples_of_r, true);
    at += static_cast<int>(examples_of_r);
  }
  batch.dropped = static_cast<int64_t>(keep_all.size()) - batch.global_kept();
  std::vector<int64_t> kept_hashes;
  for (size_t e = 0; e < keep_all.size(); ++e)
    if (keep_all[e]) kept_hashes.insert(kept_hashes.end(), hashes.begin() + e * k, hashes.begin() + (e + 1) * k);
  batch.text_hashes = at::tensor(kept_hashes, at::kLong);
  std::vector<float> labels, weights;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!keep_all[my_begin + i]) continue;
    for (size_t t = 0; t < examples[i].ids.size(); ++t) {
      batch.rows.push_back(&examples[i].ids[t]);
      batch.row_keys.push_back(static_cast<int64_t>(text_dropout_key(examples[i].dropout_key, static_cast<int64_t>(t))));
    }
    labels.push_back(examples[i].label);
    weights.push_back(examples[i].weight);
  }
  batch.labels = at::tensor(labels, at::kFloat);
  batch.weights = at::tensor(weights, at::kFloat);
  return batch;
}

int64_t chunk_passes(const std::vector<int64_t>& kept_per_rank, int64_t chunk) {
  const int64_t most = *std::max_element(kept_per_rank.begin(), kept_per_rank.end());
  return std::max<int64_t>(1, (most + chunk - 1) / chunk);
}

}  // namespace angle::train
