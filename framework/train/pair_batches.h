// Micro-batches of format-A examples: zigzag rows (text1, text2 of each pair), and angle-emb's
// duplicate filter computed over the *global* batch so that the result does not depend on how
// the batch is split across ranks.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "data/dataset_file.h"
#include "model/encoder.h"

namespace angle::train {

// 64-bit FNV-1a of a token-id sequence: what ranks exchange instead of the ids themselves.
uint64_t hash_ids(const std::vector<int64_t>& ids);

// angle-emb's AngleDataCollator filter over texts in global order (`texts_per_example` hashes
// per example): an example is dropped when any of its texts equals one seen earlier in the batch
// (text1 == text2 included); texts of a dropped example that came before the duplicate stay
// "seen", exactly as the reference does. Returns one keep flag per example.
std::vector<bool> duplicate_filter(const std::vector<uint64_t>& text_hashes, size_t texts_per_example);

struct PairBatch {
  model::TokenBatch tokens;  // 2 rows per kept pair (may be 0 rows on a rank)
  at::Tensor labels;         // [kept pairs], float32
};

// The kept examples of `examples` (keep[i] for examples[i]).
PairBatch make_pair_batch(const std::vector<data::Example>& examples, const std::vector<bool>& keep, int64_t pad_id);

}  // namespace angle::train
