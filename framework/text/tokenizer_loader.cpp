// Tokenizer::from_model_dir: the layouts HuggingFace model directories use: tokenizer.json with a
// WordPiece or BPE model, or BERT's vocab.txt + tokenizer_config.json.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "text/bpe.h"
#include "text/splitter.h"
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

std::vector<AddedToken> added_tokens_of(const json& root, const std::string& path) {
  std::vector<AddedToken> out;
  for (const json& added : root.value("added_tokens", json::array()))
    out.push_back({added.at("content").get<std::string>(), token_id(added.at("id"), path, "added_tokens.id"),
                   added.value("lstrip", false), added.value("rstrip", false)});
  return out;
}

TokenizerSpec wordpiece_from_tokenizer_json(const json& root, const std::string& path) {
  TokenizerSpec spec;
  spec.source = path;
  const json& model = root.at("model");
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
  spec.added_tokens = added_tokens_of(root, path);
  return spec;
}

// A BPE model with its normalizer and pre-tokenizer.
class BpePipeline final : public PieceEncoder {
 public:
  BpePipeline(TextSplitter splitter, Bpe bpe, std::string fingerprint)
      : splitter_(std::move(splitter)), bpe_(std::move(bpe)), fingerprint_(std::move(fingerprint)) {}
  void append_ids(std::string_view segment, bool at_text_start, std::vector<int64_t>& out) const override {
    for (const std::string& word : splitter_.words(segment, at_text_start)) bpe_.append_ids(word, out);
  }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  TextSplitter splitter_;
  Bpe bpe_;
  std::string fingerprint_;
};

// The special tokens a post-processor puts around a single text (TemplateProcessing's "single",
// BertProcessing's / RobertaProcessing's cls and sep; ByteLevel adds none).
void add_special_tokens(const json& post, const std::string& path, TokenizerFrame& frame) {
  if (post.is_null()) return;
  const std::string type = post.value("type", "");
  if (type == "Sequence") {
    for (const json& inner : post.at("processors")) add_special_tokens(inner, path, frame);
  } else if (type == "TemplateProcessing") {
    bool after_text = false;
    for (const json& item : post.at("single")) {
      if (item.contains("Sequence")) {
        ANGLE_CHECK(!after_text && item["Sequence"].value("id", "A") == "A", path,
                    ": post_processor.single must hold the text ($A) once");
        after_text = true;
        continue;
      }
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      const json& special = post.at("special_tokens").at(name);
      for (const json& id : special.at("ids"))
        (after_text ? frame.suffix_ids : frame.prefix_ids).push_back(token_id(id, path, "post_processor.special_tokens"));
    }
    ANGLE_CHECK(after_text, path, ": post_processor.single has no $A");
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    frame.prefix_ids.push_back(token_id(post.at("cls").at(1), path, "post_processor.cls"));
    frame.suffix_ids.push_back(token_id(post.at("sep").at(1), path, "post_processor.sep"));
  } else if (type != "ByteLevel") {
    ANGLE_FAIL(path, ": post_processor type '", type,
               "' is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)");
  }
}

std::string fnv1a_hex(std::string_view bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  std::ostringstream out;
  out << std::hex << h;
  return out.str();
}

// tokenizer_config.json's pad_token, looked up among the added tokens and the vocabulary.
std::optional<int64_t> configured_pad_id(const json& config, const std::vector<AddedToken>& added,
                                         const std::unordered_map<std::string, int64_t>& vocab) {
  if (!config.contains("pad_token") || config["pad_token"].is_null()) return std::nullopt;
  const std::string pad = token_content(config["pad_token"]);
  for (const AddedToken& t : added)
    if (t.content == pad) return t.id;
  if (auto it = vocab.find(pad); it != vocab.end()) return it->second;
  ANGLE_FAIL("tokenizer_config.json: pad_token '", pad, "' is neither an added token nor in the vocabulary");
}

Tokenizer bpe_from_tokenizer_json(const json& root, const std::string& path, const json& config) {
  const json& model = root.at("model");
  const std::string where = path + " model";
  BpeSpec spec;
  spec.source = path;
  const json vocab = json_field<json>(model, "vocab", where);
  for (const auto& [token, id] : vocab.items())
    spec.vocab.emplace(token, token_id(id, path, "model.vocab." + token));
  for (const json& merge : json_field_or<json>(model, "merges", json::array(), where)) {
    if (merge.is_array() && merge.size() == 2) {  // tokenizers >= 0.20: ["a", "b"]
      spec.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      continue;
    }
    const std::string line = merge.is_string() ? merge.get<std::string>() : merge.dump();
    const size_t space = line.find(' ');
    ANGLE_CHECK(merge.is_string() && space != std::string::npos && line.find(' ', space + 1) == std::string::npos, path,
                ": model.merges[", spec.merges.size(), "] '", line, "' is not two tokens");
    spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  spec.unk_token = json_field_or<std::string>(model, "unk_token", "", where);
  if (spec.unk_token->empty()) spec.unk_token.reset();
  spec.byte_fallback = json_field_or<bool>(model, "byte_fallback", false, where);
  spec.fuse_unk = json_field_or<bool>(model, "fuse_unk", false, where);
  spec.ignore_merges = json_field_or<bool>(model, "ignore_merges", false, where);
  ANGLE_CHECK(json_field_or<double>(model, "dropout", 0.0, where) == 0.0, path,
              ": model.dropout (BPE dropout) is not supported; set it to null");
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"})
    ANGLE_CHECK(json_field_or<std::string>(model, field, "", where).empty(), path, ": model.", field,
                " is not supported with BPE");

  TokenizerFrame frame;
  frame.source = path;
  frame.added_tokens = added_tokens_of(root, path);
  add_special_tokens(root.value("post_processor", json()), path, frame);
  for (const auto& [token, id] : spec.vocab) frame.vocab_size = std::max(frame.vocab_size, static_cast<size_t>(id) + 1);
  for (const AddedToken& t : frame.added_tokens) frame.vocab_size = std::max(frame.vocab_size, static_cast<size_t>(t.id) + 1);
  const json& padding = root.value("padding", json());
  if (padding.is_object()) {
    frame.pad_id = token_id(padding.value("pad_id", json(0)), path, "padding.pad_id");
    frame.padding_side = padding.value("direction", "Right") == "Left" ? PaddingSide::left : PaddingSide::right;
  }
  if (auto pad = configured_pad_id(config, frame.added_tokens, spec.vocab)) frame.pad_id = *pad;
  json identity = json::object();
  for (const char* field : {"model", "normalizer", "pre_tokenizer", "post_processor", "added_tokens"})
    identity[field] = root.value(field, json());
  TextSplitter splitter(root.value("normalizer", json()), root.value("pre_tokenizer", json()), path);
  auto pieces = std::make_shared<BpePipeline>(std::move(splitter), Bpe(std::move(spec)), "bpe-" + fnv1a_hex(identity.dump()));
  return Tokenizer(std::move(pieces), std::move(frame));
}

Tokenizer from_tokenizer_json(const std::string& path, const json& config) {
  const json root = read_json_file(path);
  const std::string model_type = json_field<std::string>(root.at("model"), "type", path + " model");
  if (model_type == "WordPiece") return Tokenizer(wordpiece_from_tokenizer_json(root, path));
  ANGLE_CHECK(model_type == "BPE", path, ": model.type '", model_type,
              "' is not supported (WordPiece: the BERT family; BPE: GPT-2, Llama, Mistral, Qwen)");
  return bpe_from_tokenizer_json(root, path, config);
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
  const bool has_json = fs::exists(root / "tokenizer.json");
  const std::string path = (root / (has_json ? "tokenizer.json" : "vocab.txt")).string();
  ANGLE_CHECK(has_json || fs::exists(path), dir, ": no tokenizer.json or vocab.txt in the model directory");
  const std::string config_path = (root / "tokenizer_config.json").string();
  const json config = fs::exists(config_path) ? read_json_file(config_path) : json::object();
  try {
    Tokenizer tokenizer = has_json ? from_tokenizer_json(path, config) : Tokenizer(from_vocab_txt(path, config_path));
    TokenizerFrame& frame = tokenizer.frame_;
    if (config.contains("model_max_length") && config["model_max_length"].is_number())
      frame.model_max_length = static_cast<size_t>(std::clamp(config["model_max_length"].get<double>(), 0.0, 1e9));
    const std::string side = json_field_or<std::string>(config, "padding_side", "", config_path);
    ANGLE_CHECK(side.empty() || side == "left" || side == "right", config_path, ": padding_side '", side,
                "' is neither left nor right");
    if (!side.empty()) frame.padding_side = side == "left" ? PaddingSide::left : PaddingSide::right;
    return tokenizer;
  } catch (const nlohmann::json::exception& e) {
    ANGLE_FAIL(path, ": unexpected structure: ", e.what());
  }
}

}  // namespace angle::text
