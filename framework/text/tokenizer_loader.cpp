// Tokenizer::from_model_dir: the two layouts HuggingFace model directories use.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_file.h"
#include "text/tokenizer.h"

namespace angle::text {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// HF: strip_accents=None means "strip when lower-casing".
bool resolve_strip_accents(const json& value, bool lowercase) {
  return value.is_null() ? lowercase : value.get<bool>();
}

std::string token_content(const json& value) {  // "[UNK]" or {"content": "[UNK]", ...}
  return value.is_object() ? value.value("content", std::string()) : value.get<std::string>();
}

// A token id: an integer in [0, 2^31) (a float, a negative or a huge number is a broken file).
int64_t token_id(const json& value, const std::string& path, const std::string& field) {
  if (!fits_integer<int32_t>(value) || value.get<int64_t>() < 0) throw_wrong_type(path, field, value.dump());
  return value.get<int64_t>();
}

TokenizerSpec from_tokenizer_json(const std::string& path) {
  json root = read_json_file(path);
  TokenizerSpec spec;
  spec.source = path;
  const json& model = root.at("model");
  std::string model_type = json_field<std::string>(model, "type", path + " model");
  ANGLE_CHECK(model_type == "WordPiece", path, ": model.type '", model_type,
              "' is not supported (only WordPiece, the BERT family)");
  const json vocab = json_field<json>(model, "vocab", path + " model");
  for (const auto& [token, id] : vocab.items()) spec.vocab.emplace(token, token_id(id, path, "model.vocab." + token));
  spec.unk_token = json_field_or<std::string>(model, "unk_token", "[UNK]", path);
  spec.continuing_prefix = json_field_or<std::string>(model, "continuing_subword_prefix", "##", path);
  spec.max_input_chars_per_word = json_field_or<size_t>(model, "max_input_chars_per_word", 100, path);

  const json& norm = root.value("normalizer", json());
  ANGLE_CHECK(norm.is_object() && norm.value("type", "") == "BertNormalizer", path,
              ": normalizer must be BertNormalizer (found ", norm.dump().substr(0, 80), ")");
  spec.normalizer.clean_text = json_field_or<bool>(norm, "clean_text", true, path);
  spec.normalizer.handle_chinese_chars = json_field_or<bool>(norm, "handle_chinese_chars", true, path);
  spec.normalizer.lowercase = json_field_or<bool>(norm, "lowercase", true, path);
  spec.normalizer.strip_accents = resolve_strip_accents(norm.value("strip_accents", json()), spec.normalizer.lowercase);

  const json& pre = root.value("pre_tokenizer", json());
  ANGLE_CHECK(pre.is_object() && pre.value("type", "") == "BertPreTokenizer", path,
              ": pre_tokenizer must be BertPreTokenizer (found ", pre.dump().substr(0, 80), ")");

  // [CLS]/[SEP] from the post-processor (TemplateProcessing or BertProcessing).
  const json& post = root.value("post_processor", json());
  if (post.is_object() && post.value("type", "") == "BertProcessing") {
    spec.cls_token = post.at("cls").at(0).get<std::string>();
    spec.sep_token = post.at("sep").at(0).get<std::string>();
  } else if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
    const json& single = post.at("single");
    ANGLE_CHECK(single.size() == 3 && single[0].contains("SpecialToken") && single[2].contains("SpecialToken"), path,
                ": post_processor.single must be [CLS] $A [SEP]");
    spec.cls_token = single[0]["SpecialToken"]["id"].get<std::string>();
    spec.sep_token = single[2]["SpecialToken"]["id"].get<std::string>();
  }
  const json& padding = root.value("padding", json());
  if (padding.is_object()) spec.pad_token = padding.value("pad_token", spec.pad_token);
  for (const json& added : root.value("added_tokens", json::array())) {
    spec.added_tokens.push_back({added.at("content").get<std::string>(), token_id(added.at("id"), path, "added_tokens.id"),
                                 added.value("lstrip", false), added.value("rstrip", false)});
  }
  return spec;
}

TokenizerSpec from_vocab_txt(const std::string& vocab_path, const std::string& config_path) {
  TokenizerSpec spec;
  spec.source = vocab_path;
  std::ifstream in(vocab_path);
  ANGLE_CHECK(in.good(), vocab_path, ": cannot open for reading");
  std::string line;
  int64_t id = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    spec.vocab.emplace(line, id++);
  }
  json config = fs::exists(config_path) ? read_json_file(config_path) : json::object();
  spec.normalizer.lowercase = json_field_or<bool>(config, "do_lower_case", true, config_path);
  spec.normalizer.handle_chinese_chars = json_field_or<bool>(config, "tokenize_chinese_chars", true, config_path);
  spec.normalizer.strip_accents = resolve_strip_accents(config.value("strip_accents", json()), spec.normalizer.lowercase);
  for (auto [key, field] : {std::pair{&spec.unk_token, "unk_token"}, {&spec.cls_token, "cls_token"},
                            {&spec.sep_token, "sep_token"}, {&spec.pad_token, "pad_token"}})
    if (config.contains(field) && !config[field].is_null()) *key = token_content(config[field]);
  std::string mask = config.contains("mask_token") ? token_content(config["mask_token"]) : "[MASK]";
  for (const std::string& special : {spec.pad_token, spec.unk_token, spec.cls_token, spec.sep_token, mask})
    if (auto it = spec.vocab.find(special); it != spec.vocab.end())
      spec.added_tokens.push_back({special, it->second, false, false});
  return spec;
}

}  // namespace

Tokenizer Tokenizer::from_model_dir(const std::string& dir) {
  fs::path root(dir);
  ANGLE_CHECK(fs::is_directory(root), dir, ": model directory does not exist");
  TokenizerSpec spec;
  const bool has_json = fs::exists(root / "tokenizer.json");
  const std::string path = (root / (has_json ? "tokenizer.json" : "vocab.txt")).string();
  ANGLE_CHECK(has_json || fs::exists(path), dir, ": no tokenizer.json or vocab.txt in the model directory");
  try {
    spec = has_json ? from_tokenizer_json(path) : from_vocab_txt(path, (root / "tokenizer_config.json").string());
  } catch (const nlohmann::json::exception& e) {
    ANGLE_FAIL(path, ": unexpected structure: ", e.what());
  }
  fs::path config = root / "tokenizer_config.json";
  if (fs::exists(config)) {
    json c = read_json_file(config.string());
    if (c.contains("model_max_length") && c["model_max_length"].is_number())
      spec.model_max_length = static_cast<size_t>(std::clamp(c["model_max_length"].get<double>(), 0.0, 1e9));
  }
  return Tokenizer(std::move(spec));
}

}  // namespace angle::text
