#include "model/prompt_file.h"

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
constexpr const char* kOurs = "angle_prompt.json";
constexpr const char* kSentenceTransformers = "config_sentence_transformers.json";
constexpr const char* kSlot = "{text}";
}  // namespace

std::string read_model_prompt(const std::string& dir) {
  const fs::path ours = fs::path(dir) / kOurs, st = fs::path(dir) / kSentenceTransformers;
  if (fs::exists(ours)) {
    const json j = read_json_file(ours.string());
    ANGLE_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string(), ours.string(),
                ": expected {\"prompt\": \"... {text} ...\"}");
    const std::string prompt = j["prompt"].get<std::string>();
    text::check_prompt(ours.string() + ": prompt", prompt);
    return prompt;
  }
  if (!fs::exists(st)) return "";
  const json j = read_json_file(st.string());
  if (!j.is_object() || !j.contains("default_prompt_name") || !j["default_prompt_name"].is_string()) return "";
  const std::string name = j["default_prompt_name"].get<std::string>();
  ANGLE_CHECK(j.contains("prompts") && j["prompts"].is_object() && j["prompts"].contains(name) &&
                  j["prompts"][name].is_string(),
              st.string(), ": default_prompt_name '", name, "' names no prompt in 'prompts'");
  return j["prompts"][name].get<std::string>() + kSlot;  // sentence-transformers' prompts are prefixes
}

void write_prompt_files(const std::string& dir, const std::string& prompt) {
  if (prompt.empty()) return;
  text::check_prompt("prompt", prompt);
  write_atomically((fs::path(dir) / kOurs).string(), json{{"prompt", prompt}}.dump(2) + "\n");
  const size_t slot = prompt.find(kSlot);
  if (slot + std::string(kSlot).size() == prompt.size() && prompt.find(kSlot, slot + 1) == std::string::npos)
    write_atomically((fs::path(dir) / kSentenceTransformers).string(),
                     json{{"prompts", {{"text", prompt.substr(0, slot)}}}, {"default_prompt_name", "text"},
                          {"similarity_fn_name", "cosine"}}.dump(2) + "\n");
}

}  // namespace angle::model
