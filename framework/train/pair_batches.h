// Format-A training pairs, tokenized once, and the micro-batches built from them: zigzag rows
// (text1, text2 of each pair) with angle-emb's duplicate filter.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "data/sts_files.h"
#include "model/encoder.h"

namespace angle::train {

struct TokenizedPair {
  std::vector<int64_t> text1, text2;
  double label = 0;
};

// Applies `prompt` ("...{text}...", may be empty) to both texts; see text::Tokenizer::encode_prompted.
std::vector<TokenizedPair> tokenize_pairs(const data::StsPairs& pairs, const text::Tokenizer& tokenizer,
                                          size_t max_length, const std::string& prompt);

struct PairBatch {
  model::TokenBatch tokens;  // 2 rows per kept pair
  at::Tensor labels;         // [kept pairs], float32
  size_t dropped = 0;        // pairs removed as duplicates
};

// angle-emb's AngleDataCollator filter: a pair is dropped when any of its texts has token ids
// already seen in this batch (text1 == text2 included); ids of a dropped pair's earlier texts
// stay "seen", exactly as the reference does. An empty result is an error naming `step`.
PairBatch make_pair_batch(const std::vector<TokenizedPair>& pairs, const std::vector<uint64_t>& indices,
                          bool filter_duplicate, int64_t pad_id, long step);

}  // namespace angle::train
