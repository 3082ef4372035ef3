// Tokenizers of HuggingFace model directories, equal to HuggingFace `tokenizers`:
//  - WordPiece (BERT): BertNormalizer, BertPreTokenizer, WordPiece (text/wordpiece.h);
//  - BPE from tokenizer.json: byte-level (GPT-2, Llama-3, Qwen2) and SentencePiece-style with
//    byte fallback (Llama-2, Mistral), each with its normalizers and pre-tokenizers (text/bpe.h).
// Around both: added tokens matched on the raw text, the post-processor's special tokens around
// one text (BERT's [CLS] A [SEP], Llama's <s> A), the pad token and the padding side.
// No torch here: this header is cheap to include.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace angle::text {

enum class PaddingSide { right, left };

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

// A WordPiece (BERT) tokenizer, as tokenizer.json or vocab.txt + tokenizer_config.json give it.
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

// Ids of a text that holds no added token: WordPiece or a BPE pipeline.
class PieceEncoder {
 public:
  virtual ~PieceEncoder() = default;
  // `at_text_start`: the segment begins the whole text (SentencePiece prepends "▁" only there).
  virtual void append_ids(std::string_view segment, bool at_text_start, std::vector<int64_t>& out) const = 0;
  // Stable hash of vocabulary and options: datasets record it to refuse a different tokenizer.
  virtual std::string fingerprint() const = 0;
};

// Everything around the piece encoder.
struct TokenizerFrame {
  std::vector<AddedToken> added_tokens;
  std::vector<int64_t> prefix_ids, suffix_ids;  // the post-processor's special tokens around one text
  int64_t pad_id = 0;                           // LLM tokenizers without a pad token pad with 0 (AnglE)
  PaddingSide padding_side = PaddingSide::right;
  size_t vocab_size = 0;                        // largest id + 1
  size_t model_max_length = 512;
  std::string source;
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);  // WordPiece
  Tokenizer(std::shared_ptr<const PieceEncoder> pieces, TokenizerFrame frame);
  // Reads tokenizer.json, or vocab.txt + tokenizer_config.json, from a HF model directory;
  // tokenizer_config.json's model_max_length, pad_token and padding_side apply to both.
  static Tokenizer from_model_dir(const std::string& dir);

  // Ids of `text` without the post-processor's special tokens.
  std::vector<int64_t> tokenize_ids(std::string_view text) const;
  // prefix pieces suffix (e.g. [CLS] pieces [SEP]), the pieces truncated so that the total is at
  // most max_length.
  std::vector<int64_t> encode(std::string_view text, size_t max_length) const;
  // `prompt` is a template with "{text}" (empty: no prompt). When the prompted text is too long
  // the *text* is truncated, never the template's closing tokens (angle-emb <= v0.5 behaviour,
  // which last-token pooling needs).
  std::vector<int64_t> encode_prompted(const std::string& prompt, std::string_view text, size_t max_length) const;

  int64_t pad_id() const { return frame_.pad_id; }
  PaddingSide padding_side() const { return frame_.padding_side; }
  size_t vocab_size() const { return frame_.vocab_size; }
  size_t model_max_length() const { return frame_.model_max_length; }
  const std::string& source() const { return frame_.source; }
  const PieceEncoder& pieces() const { return *pieces_; }
  // Stable hash of vocabulary and options: datasets record it to refuse a different tokenizer.
  std::string fingerprint() const { return pieces_->fingerprint(); }

 private:
  size_t special_count() const { return frame_.prefix_ids.size() + frame_.suffix_ids.size(); }
  std::vector<int64_t> with_special_tokens(const std::vector<int64_t>& pieces) const;

  std::shared_ptr<const PieceEncoder> pieces_;
  TokenizerFrame frame_;
};

// A prompt template (a job's data.*_prompt, --prompt, a model's prompt file) is empty (no prompt)
// or holds {text}, where each text goes; else an error naming `where`.
void check_prompt(const std::string& where, const std::string& prompt);

}  // namespace angle::text
