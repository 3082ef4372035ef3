// The shapes `angle plan` reasons about, from a model's config.json alone (no weights loaded):
// the sharding units of model::BertModel (word embeddings, the rest of the embeddings, each
// layer) with their parameter counts, and the sizes the activation and FLOP formulas need.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/bert_config.h"

namespace angle::plan {

struct UnitShape {
  std::string name;
  std::vector<int64_t> param_numels;  // in named_parameters() order
  bool sparse = false;                // word embeddings: looked up, sparse gradient
  bool backward_reads_params = true;
  int64_t numel() const;
};

struct ModelShape {
  int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0;
  std::vector<UnitShape> units;
  int64_t numel() const;
  int64_t matmul_weights() const;  // weights of the encoder layers' matrix products (FLOPs)
};

ModelShape bert_shape(const model::BertConfig& config);

}  // namespace angle::plan
