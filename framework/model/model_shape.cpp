#include "model/model_shape.h"

#include <numeric>

#include "core/error.h"
#include "core/json_file.h"
#include "model/decoder_config.h"

namespace angle::model {

int64_t UnitShape::numel() const { return std::accumulate(param_numels.begin(), param_numels.end(), int64_t{0}); }

int64_t ModelShape::numel() const {
  int64_t n = 0;
  for (const UnitShape& u : units) n += u.numel();
  return n;
}

int64_t ModelShape::frozen() const {
  int64_t n = 0;
  for (const UnitShape& u : units) n += u.frozen;
  return n;
}

int64_t ModelShape::matmul_weights() const {
  if (!decoder) return layers * (4 * hidden * hidden + 2 * hidden * intermediate);
  const int64_t q = heads * head_dim, kv = kv_heads * head_dim;
  return layers * (hidden * (2 * q + 2 * kv) + 3 * hidden * intermediate);
}

double ModelShape::train_flops(double tokens, double squared_lengths) const {
  const double per_token = lora_rank > 0 ? 4.0 : 6.0;
  return per_token * static_cast<double>(matmul_weights()) * tokens +
         12.0 * static_cast<double>(layers * heads * std::max(head_dim, hidden / std::max<int64_t>(1, heads))) *
             squared_lengths;
}

ModelShape::RowsCost ModelShape::train_cost(const std::vector<const std::vector<int64_t>*>& rows) const {
  double tokens = 0, squares = 0;
  for (const auto* row : rows) {
    const auto n = static_cast<double>(row->size());
    tokens += n, squares += n * n;
  }
  return {tokens, train_flops(tokens, squares)};
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

ModelShape decoder_shape(const std::string& path, const model::LoraConfig& lora) {
  const model::DecoderConfig c = model::DecoderConfig::from_file(path);
  ModelShape s;
  s.decoder = true, s.lora_rank = lora.r;
  s.vocab = c.vocab_size, s.hidden = c.hidden_size, s.layers = c.num_hidden_layers, s.heads = c.num_attention_heads;
  s.intermediate = c.intermediate_size, s.kv_heads = c.num_key_value_heads, s.head_dim = c.head_dim;
  const int64_t h = s.hidden, f = s.intermediate, q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  // A parameter in model::DecoderModel's named_parameters() order: trainable, or frozen with LoRA.
  auto param = [&](UnitShape& unit, int64_t numel) {
    (lora.enabled() ? unit.frozen : unit.param_numels.emplace_back()) += numel;
  };
  auto projection = [&](UnitShape& unit, const std::string& name, int64_t in, int64_t out, bool bias) {
    param(unit, out * in);
    if (bias) param(unit, out);
    if (!lora.targets(name)) return;
    unit.param_numels.push_back(lora.r * in), unit.param_numels.push_back(out * lora.r);  // lora_A, lora_B
  };
  if (lora.enabled())
    for (const std::string& name : model::LoraConfig::all_projections())
      if (lora.targets(name)) s.adapted.push_back(name);
  UnitShape embed{"embed_tokens", {}, true, false};
  param(embed, s.vocab * h);
  s.units.push_back(embed);
  for (int64_t i = 0; i < s.layers; ++i) {
    UnitShape layer{"layers." + std::to_string(i), {}, false, true};
    projection(layer, "q_proj", h, q, c.attention_bias);
    projection(layer, "k_proj", h, kv, c.attention_bias);
    projection(layer, "v_proj", h, kv, c.attention_bias);
    projection(layer, "o_proj", q, h, c.output_bias);
    if (c.qk_norm) param(layer, c.head_dim), param(layer, c.head_dim);
    projection(layer, "gate_proj", h, f, c.mlp_bias);
    projection(layer, "up_proj", h, f, c.mlp_bias);
    projection(layer, "down_proj", f, h, c.mlp_bias);
    param(layer, h), param(layer, h);  // input_layernorm, post_attention_layernorm
    s.units.push_back(layer);
  }
  UnitShape norm{"norm", {}, false, true};
  param(norm, h);
  s.units.push_back(norm);
  return s;
}

ModelShape shape_from_config(const std::string& path, const model::LoraConfig& lora) {
  const nlohmann::json j = read_json_file(path);
  const std::string type = json_field_or<std::string>(j, "model_type", "", path);
  if (model::DecoderConfig::is_decoder(type)) return decoder_shape(path, lora);
  ANGLE_CHECK(!lora.enabled(), path, ": LoRA is planned for LLaMA-family decoders only (model_type '", type, "')");
  return bert_shape(model::BertConfig::from_file(path));
}

}  // namespace angle::model
