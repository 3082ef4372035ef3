#include "plan/model_shape.h"

#include <numeric>

#include "core/error.h"
#include "core/json_file.h"
#include "model/decoder_config.h"

namespace angle::plan {

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

namespace {

bool is_decoder_type(const std::string& model_type) { return model::DecoderConfig::is_decoder(model_type); }

}  // namespace

ModelShape decoder_shape(const std::string& path, int64_t lora_rank) {
  const nlohmann::json j = read_json_file(path);
  const std::string type = json_field_or<std::string>(j, "model_type", "", path);
  ANGLE_CHECK(is_decoder_type(type), path, ": model_type '", type,
              "' is not a LLaMA-family decoder (llama, mistral, qwen2, qwen3)");
  ModelShape s;
  s.decoder = true, s.lora_rank = lora_rank;
  s.vocab = json_field<int64_t>(j, "vocab_size", path), s.hidden = json_field<int64_t>(j, "hidden_size", path);
  s.layers = json_field<int64_t>(j, "num_hidden_layers", path);
  s.heads = json_field<int64_t>(j, "num_attention_heads", path);
  s.intermediate = json_field<int64_t>(j, "intermediate_size", path);
  for (auto [name, value] : {std::pair{"vocab_size", s.vocab}, {"hidden_size", s.hidden}, {"num_hidden_layers", s.layers},
                             {"num_attention_heads", s.heads}, {"intermediate_size", s.intermediate}})
    ANGLE_CHECK(value > 0, path, ": ", name, " must be positive (got ", value, ")");
  s.kv_heads = json_field_or<int64_t>(j, "num_key_value_heads", s.heads, path);
  s.head_dim = json_field_or<int64_t>(j, "head_dim", s.hidden / s.heads, path);
  ANGLE_CHECK(s.kv_heads > 0 && s.heads % s.kv_heads == 0 && s.head_dim > 0, path,
              ": num_key_value_heads must divide num_attention_heads, head_dim must be positive");
  const bool bias = json_field_or<bool>(j, "attention_bias", type == "qwen2", path);
  const int64_t h = s.hidden, f = s.intermediate, q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  const bool lora = lora_rank > 0;
  // The seven projections as (out, in).
  const std::vector<std::pair<int64_t, int64_t>> matrices = {{q, h}, {kv, h}, {kv, h}, {h, q}, {f, h}, {f, h}, {h, f}};
  const int64_t biases = bias ? q + 2 * kv : 0, norms = 2 * h + (type == "qwen3" ? 2 * s.head_dim : 0);
  UnitShape embed{"embed_tokens", {}, true, false};
  (lora ? embed.frozen : embed.param_numels.emplace_back()) = s.vocab * h;
  s.units.push_back(embed);
  for (int64_t i = 0; i < s.layers; ++i) {
    UnitShape layer{"layers." + std::to_string(i), {}, false, true};
    for (const auto& [out, in] : matrices) {
      if (lora) layer.frozen += out * in, layer.param_numels.push_back(lora_rank * (in + out));
      else layer.param_numels.push_back(out * in);
    }
    (lora ? layer.frozen : layer.param_numels.emplace_back()) += biases + norms;
    s.units.push_back(layer);
  }
  UnitShape norm{"norm", {}, false, true};
  (lora ? norm.frozen : norm.param_numels.emplace_back()) = h;
  s.units.push_back(norm);
  return s;
}

ModelShape shape_from_config(const std::string& path, int64_t lora_rank) {
  const nlohmann::json j = read_json_file(path);
  const std::string type = json_field_or<std::string>(j, "model_type", "", path);
  if (is_decoder_type(type)) return decoder_shape(path, lora_rank);
  ANGLE_CHECK(lora_rank == 0, path, ": LoRA is planned for LLaMA-family decoders only (model_type '", type, "')");
  return bert_shape(model::BertConfig::from_file(path));
}

}  // namespace angle::plan
