// The normalizer and pre-tokenizer of a tokenizer.json, for BPE models: a text segment (no added
// tokens in it) becomes the words that BPE encodes one by one. Supported as HuggingFace
// `tokenizers` defines them:
//   normalizers:     NFC NFD NFKC NFKD Lowercase StripAccents Strip Prepend Replace Sequence
//   pre-tokenizers:  ByteLevel Split Metaspace Digits Sequence
// Regular expressions are ICU's; `\s`/`\S` are rewritten to White_Space so that they mean what
// Oniguruma (HF's engine) means by them. Anything else is an error naming the file and type.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace angle::text {

class TextSplitter {
 public:
  struct Piece {
    std::string text;
    bool at_text_start = false;  // begins the whole text (Metaspace's "first" prepend scheme)
  };
  using Normalize = std::function<void(std::string&)>;
  using PreTokenize = std::function<void(std::vector<Piece>&)>;

  // `normalizer` and `pre_tokenizer` are the tokenizer.json fields (null: none).
  TextSplitter(const nlohmann::json& normalizer, const nlohmann::json& pre_tokenizer, const std::string& path);
  std::vector<std::string> words(std::string_view segment, bool at_text_start) const;

 private:
  std::vector<Normalize> normalizers_;
  std::vector<PreTokenize> pre_tokenizers_;
};

// GPT-2's reversible byte -> printable character map (as UTF-8), used by ByteLevel.
const std::string& byte_level_char(unsigned char byte);

}  // namespace angle::text
