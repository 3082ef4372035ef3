// The fields of a HuggingFace LLaMA-family config.json (model_type llama, mistral, qwen2, qwen3)
// that the decoder needs, validated. Both config layouts are read: rope_theta + rope_scaling
// (transformers 4) and rope_parameters (transformers 5).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace angle::model {

struct DecoderConfig {
  std::string model_type;  // llama | mistral | qwen2 | qwen3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // grouped-query attention; = heads when absent
  int64_t head_dim = 0;             // hidden / heads when absent (qwen3: 128)
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double attention_dropout = 0.0;
  bool attention_bias = false;  // q/k/v (and o for llama) projections have biases (qwen2: q/k/v always)
  bool output_bias = false;     // o_proj has a bias (llama's attention_bias)
  bool mlp_bias = false;        // llama's mlp_bias
  bool qk_norm = false;         // qwen3: RMSNorm over each head of q and k
  bool tie_word_embeddings = false;
  std::optional<int64_t> sliding_window;  // mistral: keys at most this far back
  // Rotary embeddings: theta, and the scaling (rope_type default, linear or llama3).
  double rope_theta = 10000.0;
  std::string rope_type = "default";
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;  // llama3
  int64_t rope_original_max_positions = 8192;                       // llama3
  std::string source;  // path of config.json, for messages
  // BiLLM (angle-emb's apply_billm): layers K.. attend both ways. Not a config.json field: the
  // model directory's angle_embedding.json or the job sets it (model/embedding_file.h).
  std::optional<int64_t> bidirectional_from;

  static bool is_decoder(const std::string& model_type);
  static DecoderConfig from_file(const std::string& path);
  // Checks K against the layers: 0..num_hidden_layers (= layers: none attends both ways).
  void set_bidirectional_from(int64_t k);
};

}  // namespace angle::model
