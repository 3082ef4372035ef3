// Micro-batches of format-A examples: zigzag rows (text1, text2 of each pair) with angle-emb's
// duplicate filter.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "data/dataset_file.h"
#include "model/encoder.h"

namespace angle::train {

struct PairBatch {
  model::TokenBatch tokens;  // 2 rows per kept pair
  at::Tensor labels;         // [kept pairs], float32
  size_t dropped = 0;        // pairs removed as duplicates
};

// angle-emb's AngleDataCollator filter: a pair is dropped when any of its texts has token ids
// already seen in this batch (text1 == text2 included); ids of a dropped pair's earlier texts
// stay "seen", exactly as the reference does. An empty result is an error naming `step`.
PairBatch make_pair_batch(const std::vector<data::Example>& examples, bool filter_duplicate, int64_t pad_id, long step);

}  // namespace angle::train
