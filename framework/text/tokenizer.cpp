#include "text/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "text/wordpiece.h"

namespace angle::text {

namespace {

int64_t require_id(const TokenizerSpec& spec, const std::string& token) {
  auto it = spec.vocab.find(token);
  ANGLE_CHECK(it != spec.vocab.end(), spec.source, ": special token '", token, "' is not in the vocabulary");
  return it->second;
}

TokenizerFrame wordpiece_frame(const TokenizerSpec& spec) {
  ANGLE_CHECK(!spec.vocab.empty(), spec.source, ": vocabulary is empty");
  TokenizerFrame frame;
  frame.added_tokens = spec.added_tokens;
  frame.prefix_ids = {require_id(spec, spec.cls_token)};
  frame.suffix_ids = {require_id(spec, spec.sep_token)};
  frame.pad_id = require_id(spec, spec.pad_token);
  for (const auto& [token, id] : spec.vocab) frame.vocab_size = std::max(frame.vocab_size, static_cast<size_t>(id) + 1);
  frame.model_max_length = spec.model_max_length;
  frame.source = spec.source;
  return frame;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerSpec spec) : Tokenizer(nullptr, wordpiece_frame(spec)) {
  pieces_ = std::make_shared<WordPiece>(std::move(spec));
}

Tokenizer::Tokenizer(std::shared_ptr<const PieceEncoder> pieces, TokenizerFrame frame)
    : pieces_(std::move(pieces)), frame_(std::move(frame)) {
  // Longest first, so that leftmost-longest matching is a simple scan.
  std::stable_sort(frame_.added_tokens.begin(), frame_.added_tokens.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

std::vector<int64_t> Tokenizer::tokenize_ids(std::string_view text) const {
  std::vector<int64_t> ids;
  size_t pos = 0, segment_start = 0;
  // Added (special) tokens are matched on the raw text, leftmost-longest, as HF's AddedVocabulary does.
  while (pos < text.size() && !frame_.added_tokens.empty()) {
    const AddedToken* match = nullptr;
    for (const AddedToken& token : frame_.added_tokens)
      if (!token.content.empty() && text.compare(pos, token.content.size(), token.content) == 0) {
        match = &token;
        break;
      }
    if (!match) {
      ++pos;
      continue;
    }
    size_t left = pos, right = pos + match->content.size();
    if (match->lstrip)
      while (left > segment_start && std::isspace(static_cast<unsigned char>(text[left - 1]))) --left;
    if (match->rstrip)
      while (right < text.size() && std::isspace(static_cast<unsigned char>(text[right]))) ++right;
    pieces_->append_ids(text.substr(segment_start, left - segment_start), segment_start == 0, ids);
    ids.push_back(match->id);
    pos = segment_start = right;
  }
  pieces_->append_ids(text.substr(segment_start), segment_start == 0, ids);
  return ids;
}

std::vector<int64_t> Tokenizer::with_special_tokens(const std::vector<int64_t>& pieces) const {
  std::vector<int64_t> ids;
  ids.reserve(frame_.prefix_ids.size() + pieces.size() + frame_.suffix_ids.size());
  ids.insert(ids.end(), frame_.prefix_ids.begin(), frame_.prefix_ids.end());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.insert(ids.end(), frame_.suffix_ids.begin(), frame_.suffix_ids.end());
  return ids;
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, size_t max_length) const {
  const size_t specials = special_count();
  ANGLE_CHECK(max_length >= specials, "max length ", max_length, " leaves no room for the tokenizer's ", specials,
              " special tokens");
  std::vector<int64_t> pieces = tokenize_ids(text);
  if (pieces.size() > max_length - specials) pieces.resize(max_length - specials);
  return with_special_tokens(pieces);
}

std::vector<int64_t> Tokenizer::encode_prompted(const std::string& prompt, std::string_view text,
                                                size_t max_length) const {
  if (prompt.empty()) return encode(text, max_length);
  const size_t slot = prompt.find("{text}");
  ANGLE_CHECK(slot != std::string::npos, "prompt '", prompt, "' has no {text} placeholder");
  const std::string prefix = prompt.substr(0, slot), suffix = prompt.substr(slot + 6);
  const size_t specials = special_count();
  std::vector<int64_t> whole = tokenize_ids(prefix + std::string(text) + suffix);
  if (whole.size() + specials > max_length) {
    std::vector<int64_t> head = tokenize_ids(prefix), body = tokenize_ids(text), tail = tokenize_ids(suffix);
    ANGLE_CHECK(head.size() + tail.size() + specials < max_length, "prompt '", prompt, "' alone needs ",
                head.size() + tail.size() + specials, " tokens; max length is ", max_length);
    body.resize(max_length - specials - head.size() - tail.size());
    whole = head;
    whole.insert(whole.end(), body.begin(), body.end());
    whole.insert(whole.end(), tail.begin(), tail.end());
  }
  return with_special_tokens(whole);
}

void check_prompt(const std::string& where, const std::string& prompt) {
  ANGLE_CHECK(prompt.empty() || prompt.find("{text}") != std::string::npos, where, " '", prompt,
              "' must contain {text}");
}

}  // namespace angle::text
