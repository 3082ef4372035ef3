#include "train/pair_batches.h"

#include <ATen/ATen.h>

#include <set>

#include "core/error.h"

namespace angle::train {

PairBatch make_pair_batch(const std::vector<data::Example>& examples, bool filter_duplicate, int64_t pad_id, long step) {
  std::set<std::vector<int64_t>> seen;
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<float> labels;
  PairBatch batch;
  for (const data::Example& example : examples) {
    ANGLE_CHECK(example.ids.size() == 2, "format A examples have two texts, got ", example.ids.size());
    bool duplicate = false;
    for (const auto& text : example.ids) {
      if (filter_duplicate && !seen.insert(text).second) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) {
      ++batch.dropped;
      continue;
    }
    rows.push_back(&example.ids[0]);
    rows.push_back(&example.ids[1]);
    labels.push_back(example.label);
  }
  ANGLE_CHECK(!labels.empty(), "step ", step, ": every pair of the batch is a duplicate of another; set "
              "data.filter_duplicate = false or deduplicate the data");
  batch.tokens = model::collate(rows, pad_id);
  batch.labels = at::tensor(labels, at::kFloat);
  return batch;
}

}  // namespace angle::train
