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

// sentence-transformers' default prompt as a template, or "".
std::string sentence_transformers_prompt(const fs::path& st) {
  if (!fs::exists(st)) return "";
  const json j = read_json_file(st.string());
  if (!j.is_object() || !j.contains("default_prompt_name") || !j["default_prompt_name"].is_string()) return "";
  const std::string name = j["default_prompt_name"].get<std::string>();
  ANGLE_CHECK(j.contains("prompts") && j["prompts"].is_object() && j["prompts"].contains(name) &&
                  j["prompts"][name].is_string(),
              st.string(), ": default_prompt_name '", name, "' names no prompt in 'prompts'");
  return j["prompts"][name].get<std::string>() + kSlot;  // sentence-transformers' prompts are prefixes
}

}  // namespace

EmbeddingSettings read_embedding_settings(const std::string& dir) {
  const fs::path ours = fs::path(dir) / kOurs;
  EmbeddingSettings settings;
  if (!fs::exists(ours)) {
    settings.prompt = sentence_transformers_prompt(fs::path(dir) / kSentenceTransformers);
    return settings;
  }
  const json j = read_json_file(ours.string());
  const std::string expected = ": expected {\"prompt\": \"... {text} ...\", \"bidirectional_from\": K}";
  ANGLE_CHECK(j.is_object(), ours.string(), expected);
  for (const auto& [key, value] : j.items())
    ANGLE_CHECK(key == "prompt" || key == "bidirectional_from", ours.string(), ": unknown key '", key, "'", expected);
  if (j.contains("prompt")) {
    ANGLE_CHECK(j["prompt"].is_string(), ours.string(), ": prompt is not a string", expected);
    settings.prompt = j["prompt"].get<std::string>();
    text::check_prompt(ours.string() + ": prompt", settings.prompt);
  }
  if (j.contains("bidirectional_from")) {
    ANGLE_CHECK(j["bidirectional_from"].is_number_integer(), ours.string(), ": bidirectional_from is not an integer");
    settings.bidirectional_from = j["bidirectional_from"].get<int64_t>();
  }
  return settings;
}

void write_embedding_files(const std::string& dir, const EmbeddingSettings& settings) {
  json ours = json::object();
  if (!settings.prompt.empty()) {
    text::check_prompt("prompt", settings.prompt);
    ours["prompt"] = settings.prompt;
  }
  if (settings.bidirectional_from) ours["bidirectional_from"] = *settings.bidirectional_from;
  if (ours.empty()) return;
  write_atomically((fs::path(dir) / kOurs).string(), ours.dump(2) + "\n");
  const std::string& prompt = settings.prompt;
  const size_t slot = prompt.find(kSlot);
  if (!prompt.empty() && slot + std::string(kSlot).size() == prompt.size() && prompt.find(kSlot, slot + 1) == std::string::npos)
    write_atomically((fs::path(dir) / kSentenceTransformers).string(),
                     json{{"prompts", {{"text", prompt.substr(0, slot)}}}, {"default_prompt_name", "text"},
                          {"similarity_fn_name", "cosine"}}.dump(2) + "\n");
}

}  // namespace angle::model
