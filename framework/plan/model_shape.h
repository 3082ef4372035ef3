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
  // Model FLOPs of training (forward + backward = 3x forward) on `tokens` tokens whose sequences'
  // squared lengths sum to `squared_lengths`: 6 x matmul_weights per token, plus attention's two
  // batched products (2 x hidden x length^2 per layer and sequence in forward: 12 x layers x hidden
  // x length^2 over forward and backward). Embedding look-ups, LayerNorm and biases are left out.
  double train_flops(double tokens, double squared_lengths) const;
};

ModelShape bert_shape(const model::BertConfig& config);

}  // namespace angle::plan
