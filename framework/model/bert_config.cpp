#include "model/bert_config.h"

#include "core/error.h"
#include "core/json_file.h"
#include "model/decoder_config.h"

namespace angle::model {

BertConfig BertConfig::from_file(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  std::string model_type = json_field_or<std::string>(j, "model_type", "", path);
  std::string architecture;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
    if (!j["architectures"][0].is_string()) throw_wrong_type(path, "architectures", j["architectures"].dump());
    architecture = j["architectures"][0].get<std::string>();
  }
  ANGLE_CHECK(!DecoderConfig::is_decoder(model_type), path, ": model_type '", model_type,
              "' is a decoder; this command supports BERT-family models only (so far: embed, eval, tokenize, export)");
  bool is_bert = model_type == "bert" || (model_type.empty() && architecture.rfind("Bert", 0) == 0);
  ANGLE_CHECK(is_bert, path, ": unknown architecture (model_type '", model_type, "', architectures '", architecture,
              "'); supported: bert (BERT, MiniLM, BGE, E5, ...) and the decoders llama, mistral, qwen2, qwen3");
  std::string position_type = json_field_or<std::string>(j, "position_embedding_type", "absolute", path);
  ANGLE_CHECK(position_type == "absolute", path, ": position_embedding_type '", position_type,
              "' is not supported (only absolute)");

  BertConfig c;
  c.source = path;
  c.vocab_size = json_field<int64_t>(j, "vocab_size", path);
  c.hidden_size = json_field<int64_t>(j, "hidden_size", path);
  c.num_hidden_layers = json_field<int64_t>(j, "num_hidden_layers", path);
  c.num_attention_heads = json_field<int64_t>(j, "num_attention_heads", path);
  c.intermediate_size = json_field<int64_t>(j, "intermediate_size", path);
  c.max_position_embeddings = json_field_or<int64_t>(j, "max_position_embeddings", 512, path);
  c.type_vocab_size = json_field_or<int64_t>(j, "type_vocab_size", 2, path);
  c.layer_norm_eps = json_field_or<double>(j, "layer_norm_eps", 1e-12, path);
  c.hidden_dropout_prob = json_field_or<double>(j, "hidden_dropout_prob", 0.1, path);
  c.attention_probs_dropout_prob = json_field_or<double>(j, "attention_probs_dropout_prob", 0.1, path);
  c.hidden_act = json_field_or<std::string>(j, "hidden_act", "gelu", path);
  c.pad_token_id = json_field_or<int64_t>(j, "pad_token_id", 0, path);

  for (auto [name, value] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                             {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                             {"intermediate_size", c.intermediate_size}, {"max_position_embeddings", c.max_position_embeddings},
                             {"type_vocab_size", c.type_vocab_size}})
    ANGLE_CHECK(value > 0, path, ": ", name, " must be positive (got ", value, ")");
  ANGLE_CHECK(c.hidden_size % c.num_attention_heads == 0, path, ": hidden_size ", c.hidden_size,
              " is not divisible by num_attention_heads ", c.num_attention_heads);
  ANGLE_CHECK(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" || c.hidden_act == "gelu_pytorch_tanh" ||
                  c.hidden_act == "relu",
              path, ": hidden_act '", c.hidden_act, "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
  return c;
}

}  // namespace angle::model
