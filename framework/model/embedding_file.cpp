#include "model/embedding_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"
#include "core/error.h"
#include "core/json_file.h"
#include "text/tokenizer.h"

namespace angle::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kOurs = "angle_embedding.json";
constexpr const char* kSentenceTransformers = "config_sentence_transformers.json";
constexpr const char* kSlot = "{text}";
constexpr const char* kExpected =
    ": expected {\"prompt\": \"... {text} ...\", \"bidirectional_from\": K, \"truncate_dim\": D, "
    "\"matryoshka_dims\": [D1, D2, ...]}";

// sentence-transformers' default prompt as a template ("" when none) and its truncate_dim.
void read_sentence_transformers(const fs::path& st, EmbeddingSettings& settings) {
  if (!fs::exists(st)) return;
  const json j = read_json_file(st.string());
  if (!j.is_object()) return;
  if (j.contains("truncate_dim") && !j["truncate_dim"].is_null()) {
    ANGLE_CHECK(j["truncate_dim"].is_number_integer(), st.string(), ": truncate_dim is not an integer");
    settings.truncate_dim = j["truncate_dim"].get<int64_t>();
  }
  if (!j.contains("default_prompt_name") || !j["default_prompt_name"].is_string()) return;
  const std::string name = j["default_prompt_name"].get<std::string>();
  ANGLE_CHECK(j.contains("prompts") && j["prompts"].is_object() && j["prompts"].contains(name) &&
                  j["prompts"][name].is_string(),
              st.string(), ": default_prompt_name '", name, "' names no prompt in 'prompts'");
  settings.prompt = j["prompts"][name].get<std::string>() + kSlot;  // sentence-transformers' prompts are prefixes
}

int64_t positive_integer(const json& j, const fs::path& file, const char* key) {
  ANGLE_CHECK(j.is_number_integer() && j.get<int64_t>() > 0, file.string(), ": ", key, " is not a positive integer",
              kExpected);
  return j.get<int64_t>();
}

}  // namespace

EmbeddingSettings read_embedding_settings(const std::string& dir) {
  const fs::path ours = fs::path(dir) / kOurs;
  EmbeddingSettings settings;
  if (!fs::exists(ours)) {
    read_sentence_transformers(fs::path(dir) / kSentenceTransformers, settings);
    return settings;
  }
  const json j = read_json_file(ours.string());
  ANGLE_CHECK(j.is_object(), ours.string(), kExpected);
  for (const auto& [key, value] : j.items())
    ANGLE_CHECK(key == "prompt" || key == "bidirectional_from" || key == "truncate_dim" || key == "matryoshka_dims",
                ours.string(), ": unknown key '", key, "'", kExpected);
  if (j.contains("prompt")) {
    ANGLE_CHECK(j["prompt"].is_string(), ours.string(), ": prompt is not a string", kExpected);
    settings.prompt = j["prompt"].get<std::string>();
    text::check_prompt(ours.string() + ": prompt", settings.prompt);
  }
  if (j.contains("bidirectional_from")) {
    ANGLE_CHECK(j["bidirectional_from"].is_number_integer(), ours.string(), ": bidirectional_from is not an integer");
    settings.bidirectional_from = j["bidirectional_from"].get<int64_t>();
  }
  if (j.contains("truncate_dim")) settings.truncate_dim = positive_integer(j["truncate_dim"], ours, "truncate_dim");
  if (j.contains("matryoshka_dims")) {
    ANGLE_CHECK(j["matryoshka_dims"].is_array(), ours.string(), ": matryoshka_dims is not a list", kExpected);
    for (const json& d : j["matryoshka_dims"]) settings.matryoshka_dims.push_back(positive_integer(d, ours, "matryoshka_dims"));
  }
  return settings;
}

void write_embedding_files(const std::string& dir, const EmbeddingSettings& settings) {
  json ours = json::object(), st = json::object();
  const std::string& prompt = settings.prompt;
  if (!prompt.empty()) {
    text::check_prompt("prompt", prompt);
    ours["prompt"] = prompt;
    const size_t slot = prompt.find(kSlot);
    if (slot + std::string(kSlot).size() == prompt.size() && prompt.find(kSlot, slot + 1) == std::string::npos)
      st["prompts"] = {{"text", prompt.substr(0, slot)}}, st["default_prompt_name"] = "text";
  }
  if (settings.bidirectional_from) ours["bidirectional_from"] = *settings.bidirectional_from;
  if (settings.truncate_dim) ours["truncate_dim"] = st["truncate_dim"] = *settings.truncate_dim;
  if (!settings.matryoshka_dims.empty()) ours["matryoshka_dims"] = settings.matryoshka_dims;
  if (ours.empty()) return;
  write_atomically((fs::path(dir) / kOurs).string(), ours.dump(2) + "\n");
  if (st.empty()) return;
  st["similarity_fn_name"] = "cosine";
  write_atomically((fs::path(dir) / kSentenceTransformers).string(), st.dump(2) + "\n");
}

}  // namespace angle::model
