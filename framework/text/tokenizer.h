// BERT WordPiece tokenizer, equivalent to HuggingFace `tokenizers` with BertNormalizer,
// BertPreTokenizer, WordPiece and the [CLS] A [SEP] template. No torch here: this header is
// cheap to include.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace angle::text {

struct NormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // HF: strip_accents=null means "follow lowercase"
  bool lowercase = true;
};

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false;  // also swallow whitespace on the left
  bool rstrip = false;  // ... and on the right
};

struct TokenizerSpec {
  NormalizerOptions normalizer;
  std::unordered_map<std::string, int64_t> vocab;
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string continuing_prefix = "##";
  size_t max_input_chars_per_word = 100;
  std::vector<AddedToken> added_tokens;  // matched on the raw text before normalization
  size_t model_max_length = 512;         // from the tokenizer config, informational
  std::string source;                    // file the spec was read from, for messages
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);
  // Reads tokenizer.json, or vocab.txt + tokenizer_config.json, from a HF model directory.
  static Tokenizer from_model_dir(const std::string& dir);

  // Word pieces of `text` (no special tokens), as ids.
  std::vector<int64_t> tokenize_ids(std::string_view text) const;
  // [CLS] pieces [SEP], the pieces truncated so that the total is at most max_length.
  std::vector<int64_t> encode(std::string_view text, size_t max_length) const;
  // `prompt` is a template with "{text}" (empty: no prompt). When the prompted text is too long
  // the *text* is truncated, never the template's closing tokens (angle-emb <= v0.5 behaviour,
  // which last-token pooling needs).
  std::vector<int64_t> encode_prompted(const std::string& prompt, std::string_view text, size_t max_length) const;
  // The normalized, pre-tokenized words (exposed for tests).
  std::vector<std::u32string> pre_tokenize(std::u32string_view text) const;

  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  size_t vocab_size() const { return spec_.vocab.size(); }
  const TokenizerSpec& spec() const { return spec_; }
  // Stable hash of vocabulary and options: datasets record it to refuse a different tokenizer.
  std::string fingerprint() const;

 private:
  int64_t require_id(const std::string& token) const;
  void wordpiece(const std::u32string& word, std::vector<int64_t>& out) const;
  void tokenize_segment(std::string_view segment, std::vector<int64_t>& out) const;

  TokenizerSpec spec_;
  int64_t cls_id_, sep_id_, pad_id_, unk_id_;
};

}  // namespace angle::text
