#include "train/pair_batches.h"

#include <ATen/ATen.h>

#include <set>

#include "core/error.h"

namespace angle::train {

std::vector<TokenizedPair> tokenize_pairs(const data::StsPairs& pairs, const text::Tokenizer& tokenizer,
                                          size_t max_length, const std::string& prompt) {
  ANGLE_CHECK(!pairs.score.empty(), pairs.path, ": empty training set");
  std::vector<TokenizedPair> out(pairs.score.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].text1 = tokenizer.encode_prompted(prompt, pairs.text1[i], max_length);
    out[i].text2 = tokenizer.encode_prompted(prompt, pairs.text2[i], max_length);
    out[i].label = pairs.score[i];
  }
  return out;
}

PairBatch make_pair_batch(const std::vector<TokenizedPair>& pairs, const std::vector<uint64_t>& indices,
                          bool filter_duplicate, int64_t pad_id, long step) {
  std::set<std::vector<int64_t>> seen;
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<float> labels;
  PairBatch batch;
  for (uint64_t index : indices) {
    const TokenizedPair& pair = pairs[index];
    bool duplicate = false;
    for (const auto* text : {&pair.text1, &pair.text2}) {
      if (filter_duplicate && !seen.insert(*text).second) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) {
      ++batch.dropped;
      continue;
    }
    rows.push_back(&pair.text1);
    rows.push_back(&pair.text2);
    labels.push_back(static_cast<float>(pair.label));
  }
  ANGLE_CHECK(!labels.empty(), "step ", step, ": every pair of the batch is a duplicate of another; set "
              "data.filter_duplicate = false or deduplicate the data");
  batch.tokens = model::collate(rows, pad_id);
  batch.labels = at::tensor(labels, at::kFloat);
  return batch;
}

}  // namespace angle::train
