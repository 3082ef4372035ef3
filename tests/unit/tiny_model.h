// A tiny random BERT written to a temporary directory (config.json, vocab.txt,
// model.safetensors), for tests that need a model directory but not a real one.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/bert_config.h"
#include "text/tokenizer.h"

namespace angle::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
  std::string file(const std::string& name) const { return (path / name).string(); }
};

nlohmann::json tiny_config_json();  // hidden 16, 2 layers, 2 heads, 32 positions
extern const std::vector<std::string> kTinyVocab;
// The tiny vocabulary as a BERT tokenizer spec (uncased unless `lowercase` is false).
text::TokenizerSpec tiny_tokenizer_spec(bool lowercase = true);

// Writes the three files into dir; `config` lets a test break the config on purpose.
void write_tiny_model(const std::filesystem::path& dir, const nlohmann::json& config = tiny_config_json(),
                      uint64_t seed = 7);
void write_text(const std::string& path, const std::string& content);
std::string read_text(const std::string& path);

// Runs `body` and returns the angle::Error message it throws ("" when it does not throw).
template <typename F>
std::string error_of(F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace angle::testing
