#include "model/prompt_file.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace angle::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kOurs = "angle_prompt.json";
constexpr const char* kSentenceTransformers = "config_sentence_transformers.json";
constexpr const char* kSlot = "{text}";

void write_json(const fs::path& path, const json& value) {
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  ANGLE_CHECK(out.good(), path.string(), ": write failed");
}
}  // namespace

void check_prompt_template(const std::string& where, const std::string& prompt) {
  ANGLE_CHECK(prompt.empty() || prompt.find(kSlot) != std::string::npos, where, " '", prompt,
              "' must contain {text} (where each text goes)");
}

std::string read_model_prompt(const std::string& dir) {
  const fs::path ours = fs::path(dir) / kOurs, st = fs::path(dir) / kSentenceTransformers;
  if (fs::exists(ours)) {
    const json j = read_json_file(ours.string());
    ANGLE_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string(), ours.string(),
                ": expected {\"prompt\": \"... {text} ...\"}");
    const std::string prompt = j["prompt"].get<std::string>();
    check_prompt_template(ours.string() + ": prompt", prompt);
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
  check_prompt_template("prompt", prompt);
  write_json(fs::path(dir) / kOurs, {{"prompt", prompt}});
  const size_t slot = prompt.find(kSlot);
  if (slot + std::string(kSlot).size() == prompt.size() && prompt.find(kSlot, slot + 1) == std::string::npos)
    write_json(fs::path(dir) / kSentenceTransformers,
               {{"prompts", {{"text", prompt.substr(0, slot)}}}, {"default_prompt_name", "text"},
                {"similarity_fn_name", "cosine"}});
}

}  // namespace angle::model
