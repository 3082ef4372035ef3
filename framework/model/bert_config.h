// The fields of a HuggingFace BERT config.json that the encoder needs, validated.
#pragma once
#include <cstdint>
#include <string>

namespace angle::model {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new / gelu_pytorch_tanh, relu
  int64_t pad_token_id = 0;
  std::string source;  // path of config.json, for messages

  // Reads and validates config.json; an architecture other than BERT is an error.
  static BertConfig from_file(const std::string& path);
};

}  // namespace angle::model
