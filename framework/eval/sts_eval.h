// STS evaluation: cosine similarity of the two texts' embeddings against the gold scores.
#pragma once
#include "data/sts_files.h"
#include "eval/embedder.h"

namespace angle::eval {

struct StsScore {
  double spearman = 0, pearson = 0;  // x 100
  size_t n = 0;
};

StsScore evaluate_sts(const model::Encoder& encoder, const data::StsPairs& pairs, const EmbedOptions& options);

}  // namespace angle::eval
