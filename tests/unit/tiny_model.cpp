#include "tiny_model.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "model/bert.h"
#include "model/safetensors.h"

namespace angle::testing {

const std::vector<std::string> kTinyVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat",
                                             "on",    "mat",   "un",    "##aff", "##able", "##s", ",",     ".",
                                             "!",     "a",     "hello", "world", "##ing",  "run", "é",     "中"};

TempDir::TempDir() {
  static std::mt19937_64 rng(std::random_device{}());
  path = std::filesystem::temp_directory_path() / ("angle-test-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
  std::filesystem::create_directories(path);
}
TempDir::~TempDir() { std::filesystem::remove_all(path); }

text::TokenizerSpec tiny_tokenizer_spec(bool lowercase) {
  text::TokenizerSpec spec;
  for (size_t i = 0; i < kTinyVocab.size(); ++i) spec.vocab[kTinyVocab[i]] = static_cast<int64_t>(i);
  spec.normalizer.lowercase = spec.normalizer.strip_accents = lowercase;
  spec.added_tokens = {{"[CLS]", 2}, {"[SEP]", 3}, {"[MASK]", 4}};
  spec.source = "tiny";
  return spec;
}

nlohmann::json tiny_config_json() {
  return {{"architectures", {"BertModel"}}, {"model_type", "bert"}, {"vocab_size", kTinyVocab.size()},
          {"hidden_size", 16}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 32},
          {"max_position_embeddings", 32}, {"type_vocab_size", 2}, {"layer_norm_eps", 1e-12},
          {"hidden_act", "gelu"}, {"pad_token_id", 0}};
}

void write_text(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_tiny_model(const std::filesystem::path& dir, const nlohmann::json& config, uint64_t seed) {
  std::filesystem::create_directories(dir);
  write_text((dir / "config.json").string(), tiny_config_json().dump(2));
  std::string vocab;
  for (const auto& token : kTinyVocab) vocab += token + "\n";
  write_text((dir / "vocab.txt").string(), vocab);
  // Weights always follow the valid tiny config, so that a broken `config` disagrees with them.
  at::manual_seed(seed);
  model::BertModel bert(model::BertConfig::from_file((dir / "config.json").string()));
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, param] : bert.named_parameters()) tensors[name] = at::randn_like(param) * 0.5;
  model::write_safetensors((dir / "model.safetensors").string(), tensors);
  write_text((dir / "config.json").string(), config.dump(2));
}

}  // namespace angle::testing
