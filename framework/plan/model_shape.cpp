#include "plan/model_shape.h"

#include <numeric>

namespace angle::plan {

int64_t UnitShape::numel() const { return std::accumulate(param_numels.begin(), param_numels.end(), int64_t{0}); }

int64_t ModelShape::numel() const {
  int64_t n = 0;
  for (const UnitShape& u : units) n += u.numel();
  return n;
}

int64_t ModelShape::matmul_weights() const { return layers * (4 * hidden * hidden + 2 * hidden * intermediate); }

double ModelShape::train_flops(double tokens, double squared_lengths) const {
  return 6.0 * static_cast<double>(matmul_weights()) * tokens +
         12.0 * static_cast<double>(layers * hidden) * squared_lengths;
}

ModelShape bert_shape(const model::BertConfig& c) {
  ModelShape s;
  s.vocab = c.vocab_size, s.hidden = c.hidden_size, s.layers = c.num_hidden_layers;
  s.heads = c.num_attention_heads, s.intermediate = c.intermediate_size;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  s.units.push_back({"embeddings.word_embeddings", {c.vocab_size * h}, true, false});
  s.units.push_back({"embeddings", {c.max_position_embeddings * h, c.type_vocab_size * h, h, h}, false, true});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    s.units.push_back({"encoder.layer." + std::to_string(i),
                       {h * h, h, h * h, h, h * h, h, h * h, h, h, h, h * f, f, f * h, h, h, h}, false, true});
  return s;
}

}  // namespace angle::plan
