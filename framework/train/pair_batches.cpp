#include "train/pair_batches.h"

#include <ATen/ATen.h>

#include <unordered_set>

#include "core/error.h"

namespace angle::train {

uint64_t hash_ids(const std::vector<int64_t>& ids) {
  uint64_t h = 1469598103934665603ULL;
  for (int64_t id : ids)
    for (int byte = 0; byte < 8; ++byte) h = (h ^ ((static_cast<uint64_t>(id) >> (8 * byte)) & 0xff)) * 1099511628211ULL;
  return h;
}

std::vector<bool> duplicate_filter(const std::vector<uint64_t>& text_hashes, size_t texts_per_example) {
  std::unordered_set<uint64_t> seen;
  std::vector<bool> keep(text_hashes.size() / texts_per_example, true);
  for (size_t e = 0; e < keep.size(); ++e)
    for (size_t t = 0; t < texts_per_example; ++t)
      if (!seen.insert(text_hashes[e * texts_per_example + t]).second) {
        keep[e] = false;
        break;
      }
  return keep;
}

PairBatch make_pair_batch(const std::vector<data::Example>& examples, const std::vector<bool>& keep, int64_t pad_id) {
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<float> labels;
  for (size_t i = 0; i < examples.size(); ++i) {
    ANGLE_CHECK(examples[i].ids.size() == 2, "format A examples have two texts, got ", examples[i].ids.size());
    if (!keep[i]) continue;
    rows.push_back(&examples[i].ids[0]);
    rows.push_back(&examples[i].ids[1]);
    labels.push_back(examples[i].label);
  }
  PairBatch batch;
  if (!rows.empty()) batch.tokens = model::collate(rows, pad_id);
  batch.labels = at::tensor(labels, at::kFloat);
  return batch;
}

}  // namespace angle::train
