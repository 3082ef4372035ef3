#include "model/decoder_config.h"

#include "core/error.h"
#include "core/json_file.h"

namespace angle::model {
using nlohmann::json;

bool DecoderConfig::is_decoder(const std::string& model_type) {
  return model_type == "llama" || model_type == "mistral" || model_type == "qwen2" || model_type == "qwen3";
}

namespace {

// rope_parameters (transformers 5) or rope_scaling + rope_theta (transformers 4).
void read_rope(const json& j, const std::string& path, DecoderConfig& c) {
  c.rope_theta = json_field_or<double>(j, "rope_theta", 10000.0, path);
  json scaling = j.value("rope_scaling", json());
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    scaling = j["rope_parameters"];
    c.rope_theta = json_field_or<double>(scaling, "rope_theta", c.rope_theta, path + " rope_parameters");
  }
  if (scaling.is_null()) return;
  ANGLE_CHECK(scaling.is_object(), path, ": rope_scaling must be an object or null");
  const std::string where = path + " rope scaling";
  c.rope_type = json_field_or<std::string>(scaling, "rope_type", json_field_or<std::string>(scaling, "type", "default", where), where);
  ANGLE_CHECK(c.rope_type == "default" || c.rope_type == "linear" || c.rope_type == "llama3", path, ": rope scaling type '",
              c.rope_type, "' is not supported (default, linear, llama3)");
  ANGLE_CHECK(json_field_or<double>(scaling, "partial_rotary_factor", 1.0, where) == 1.0, path,
              ": partial_rotary_factor other than 1 is not supported");
  if (c.rope_type == "default") return;
  c.rope_factor = json_field<double>(scaling, "factor", where);
  ANGLE_CHECK(c.rope_factor > 0, path, ": rope scaling factor must be positive");
  if (c.rope_type == "llama3") {
    c.rope_low_freq_factor = json_field<double>(scaling, "low_freq_factor", where);
    c.rope_high_freq_factor = json_field<double>(scaling, "high_freq_factor", where);
    c.rope_original_max_positions = json_field<int64_t>(scaling, "original_max_position_embeddings", where);
    ANGLE_CHECK(c.rope_high_freq_factor > c.rope_low_freq_factor, path,
                ": llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
}

}  // namespace

DecoderConfig DecoderConfig::from_file(const std::string& path) {
  const json j = read_json_file(path);
  DecoderConfig c;
  c.source = path;
  c.model_type = json_field_or<std::string>(j, "model_type", "", path);
  ANGLE_CHECK(is_decoder(c.model_type), path, ": model_type '", c.model_type,
              "' is not a supported decoder (llama, mistral, qwen2, qwen3)");
  c.vocab_size = json_field<int64_t>(j, "vocab_size", path);
  c.hidden_size = json_field<int64_t>(j, "hidden_size", path);
  c.intermediate_size = json_field<int64_t>(j, "intermediate_size", path);
  c.num_hidden_layers = json_field<int64_t>(j, "num_hidden_layers", path);
  c.num_attention_heads = json_field<int64_t>(j, "num_attention_heads", path);
  c.num_key_value_heads = json_field_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, path);
  ANGLE_CHECK(c.num_attention_heads > 0 && c.hidden_size > 0, path, ": hidden_size and num_attention_heads must be positive");
  c.head_dim = json_field_or<int64_t>(j, "head_dim", c.model_type == "qwen3" ? 128 : c.hidden_size / c.num_attention_heads, path);
  c.max_position_embeddings = json_field_or<int64_t>(j, "max_position_embeddings", 2048, path);
  c.rms_norm_eps = json_field_or<double>(j, "rms_norm_eps", 1e-6, path);
  c.attention_dropout = json_field_or<double>(j, "attention_dropout", 0.0, path);
  c.tie_word_embeddings = json_field_or<bool>(j, "tie_word_embeddings", false, path);
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2Attention: q/k/v with bias, o without
  } else if (c.model_type == "llama") {
    c.attention_bias = c.output_bias = json_field_or<bool>(j, "attention_bias", false, path);
    c.mlp_bias = json_field_or<bool>(j, "mlp_bias", false, path);
  } else if (c.model_type == "qwen3") {
    c.attention_bias = json_field_or<bool>(j, "attention_bias", false, path);
    c.qk_norm = true;
  }
  if (c.model_type == "mistral" && j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = json_field<int64_t>(j, "sliding_window", path);
  if ((c.model_type == "qwen2" || c.model_type == "qwen3"))
    ANGLE_CHECK(!json_field_or<bool>(j, "use_sliding_window", false, path), path,
                ": use_sliding_window is not supported for ", c.model_type);
  const std::string act = json_field_or<std::string>(j, "hidden_act", "silu", path);
  ANGLE_CHECK(act == "silu", path, ": hidden_act '", act, "' is not supported (silu: the SwiGLU MLP)");
  read_rope(j, path, c);
  for (auto [name, value] : {std::pair{"vocab_size", c.vocab_size}, {"intermediate_size", c.intermediate_size},
                             {"num_hidden_layers", c.num_hidden_layers}, {"num_key_value_heads", c.num_key_value_heads},
                             {"head_dim", c.head_dim}, {"max_position_embeddings", c.max_position_embeddings}})
    ANGLE_CHECK(value > 0, path, ": ", name, " must be positive (got ", value, ")");
  ANGLE_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, path, ": num_attention_heads ", c.num_attention_heads,
              " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
  ANGLE_CHECK(c.head_dim % 2 == 0, path, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  return c;
}

void DecoderConfig::set_bidirectional_from(int64_t k) {
  ANGLE_CHECK(k >= 0 && k <= num_hidden_layers, "bidirectional_from ", k, " is outside [0, ", num_hidden_layers, "]: ",
              source, " has ", num_hidden_layers, " layers");
  bidirectional_from = k;
}

}  // namespace angle::model
