// Model directories: the safetensors header and tensor table (every tensor is loaded), config.json,
// tokenizer.json, vocab.txt (with a fixed tokenizer_config.json).
#include "fuzz_target.h"
#include "model/bert_config.h"
#include "model/safetensors.h"
#include "text/tokenizer.h"

namespace fs = std::filesystem;
using namespace angle;

ANGLE_FUZZ_TARGET(safetensors) {
  const std::string path = fuzz::write_scratch("model.safetensors", input);
  fuzz::expect_angle_errors([&] {
    model::SafetensorsFile file(path);
    for (const auto& [name, info] : file.tensors()) file.load(name);
  });
}

ANGLE_FUZZ_TARGET(config_json) {
  const std::string path = fuzz::write_scratch("config.json", input);
  fuzz::expect_angle_errors([&] { model::BertConfig::from_file(path); });
}

ANGLE_FUZZ_TARGET(tokenizer_json) {
  fuzz::write_scratch("tokenizer-json/tokenizer.json", input);
  fuzz::expect_angle_errors([&] {
    const auto tokenizer = text::Tokenizer::from_model_dir((fuzz::scratch() / "tokenizer-json").string());
    tokenizer.encode("Hello, world! Ünïcödé 中文 tokens", 32);
  });
}

ANGLE_FUZZ_TARGET(vocab_txt) {
  fuzz::write_scratch("vocab/vocab.txt", input);
  fuzz::write_scratch("vocab/tokenizer_config.json", R"({"do_lower_case": true})");
  fuzz::expect_angle_errors([&] {
    const auto tokenizer = text::Tokenizer::from_model_dir((fuzz::scratch() / "vocab").string());
    tokenizer.encode("Hello, world! Ünïcödé 中文 tokens", 32);
  });
}
