// BERT's WordPiece pipeline, equal to HuggingFace `tokenizers` with BertNormalizer,
// BertPreTokenizer and WordPiece.
#pragma once
#include "text/tokenizer.h"

namespace angle::text {

class WordPiece final : public PieceEncoder {
 public:
  explicit WordPiece(TokenizerSpec spec);
  void append_ids(std::string_view segment, bool at_text_start, std::vector<int64_t>& out) const override;
  std::string fingerprint() const override;
  // The normalized, pre-tokenized words (exposed for tests).
  std::vector<std::u32string> pre_tokenize(std::u32string_view text) const;
  const TokenizerSpec& spec() const { return spec_; }

 private:
  void wordpiece(const std::u32string& word, std::vector<int64_t>& out) const;

  TokenizerSpec spec_;
  int64_t unk_id_;
};

}  // namespace angle::text
