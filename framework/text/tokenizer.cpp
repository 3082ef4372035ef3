#include "text/tokenizer.h"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "text/unicode.h"

namespace angle::text {

Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
  ANGLE_CHECK(!spec_.vocab.empty(), spec_.source, ": vocabulary is empty");
  unk_id_ = require_id(spec_.unk_token);
  cls_id_ = require_id(spec_.cls_token);
  sep_id_ = require_id(spec_.sep_token);
  pad_id_ = require_id(spec_.pad_token);
  // Longest first, so that leftmost-longest matching is a simple scan.
  std::stable_sort(spec_.added_tokens.begin(), spec_.added_tokens.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

int64_t Tokenizer::require_id(const std::string& token) const {
  auto it = spec_.vocab.find(token);
  ANGLE_CHECK(it != spec_.vocab.end(), spec_.source, ": special token '", token, "' is not in the vocabulary");
  return it->second;
}

std::vector<std::u32string> Tokenizer::pre_tokenize(std::u32string_view input) const {
  const NormalizerOptions& opt = spec_.normalizer;
  // BertNormalizer, in the order HF applies it: clean, CJK, accents, lowercase.
  std::u32string text;
  text.reserve(input.size());
  for (char32_t c : input) {
    if (opt.clean_text) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) c = U' ';
    }
    if (opt.handle_chinese_chars && is_chinese_char(c)) {
      text.push_back(U' ');
      text.push_back(c);
      text.push_back(U' ');
    } else {
      text.push_back(c);
    }
  }
  if (opt.strip_accents) {
    std::u32string decomposed = nfd(text);
    text.clear();
    for (char32_t c : decomposed)
      if (!is_nonspacing_mark(c)) text.push_back(c);
  }
  if (opt.lowercase) {
    std::u32string lowered;
    lowered.reserve(text.size());
    for (char32_t c : text) append_lowercase(c, lowered);
    text.swap(lowered);
  }
  // BertPreTokenizer: whitespace separates words, each punctuation character is its own word.
  std::vector<std::u32string> words;
  std::u32string current;
  auto flush = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  for (char32_t c : text) {
    if (is_whitespace(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      words.emplace_back(1, c);
    } else {
      current.push_back(c);
    }
  }
  flush();
  return words;
}

void Tokenizer::wordpiece(const std::u32string& word, std::vector<int64_t>& out) const {
  if (word.size() > spec_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  size_t first_piece = out.size();
  size_t start = 0;
  std::string candidate;
  while (start < word.size()) {
    size_t end = word.size();
    int64_t found = -1;
    while (start < end) {
      candidate = start > 0 ? spec_.continuing_prefix : std::string();
      candidate += u32_to_utf8(std::u32string_view(word).substr(start, end - start));
      if (auto it = spec_.vocab.find(candidate); it != spec_.vocab.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) {  // no piece matches: the whole word is unknown
      out.resize(first_piece);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void Tokenizer::tokenize_segment(std::string_view segment, std::vector<int64_t>& out) const {
  for (const std::u32string& word : pre_tokenize(utf8_to_u32(segment))) wordpiece(word, out);
}

std::vector<int64_t> Tokenizer::tokenize_ids(std::string_view text) const {
  std::vector<int64_t> ids;
  size_t pos = 0, segment_start = 0;
  // Added (special) tokens are matched on the raw text, leftmost-longest, as HF's AddedVocabulary does.
  while (pos < text.size() && !spec_.added_tokens.empty()) {
    const AddedToken* match = nullptr;
    for (const AddedToken& token : spec_.added_tokens)
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
    tokenize_segment(text.substr(segment_start, left - segment_start), ids);
    ids.push_back(match->id);
    pos = segment_start = right;
  }
  tokenize_segment(text.substr(segment_start), ids);
  return ids;
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, size_t max_length) const {
  ANGLE_CHECK(max_length >= 2, "max length ", max_length, " leaves no room for [CLS] and [SEP]");
  std::vector<int64_t> pieces = tokenize_ids(text);
  if (pieces.size() > max_length - 2) pieces.resize(max_length - 2);
  std::vector<int64_t> ids;
  ids.reserve(pieces.size() + 2);
  ids.push_back(cls_id_);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.push_back(sep_id_);
  return ids;
}

std::vector<int64_t> Tokenizer::encode_prompted(const std::string& prompt, std::string_view text,
                                                size_t max_length) const {
  if (prompt.empty()) return encode(text, max_length);
  const size_t slot = prompt.find("{text}");
  ANGLE_CHECK(slot != std::string::npos, "prompt '", prompt, "' has no {text} placeholder");
  const std::string prefix = prompt.substr(0, slot), suffix = prompt.substr(slot + 6);
  std::vector<int64_t> whole = tokenize_ids(prefix + std::string(text) + suffix);
  if (whole.size() + 2 > max_length) {
    std::vector<int64_t> head = tokenize_ids(prefix), body = tokenize_ids(text), tail = tokenize_ids(suffix);
    ANGLE_CHECK(head.size() + tail.size() + 2 < max_length, "prompt '", prompt, "' alone needs ",
                head.size() + tail.size() + 2, " tokens; max length is ", max_length);
    body.resize(max_length - 2 - head.size() - tail.size());
    whole = head;
    whole.insert(whole.end(), body.begin(), body.end());
    whole.insert(whole.end(), tail.begin(), tail.end());
  }
  std::vector<int64_t> ids{cls_id_};
  ids.insert(ids.end(), whole.begin(), whole.end());
  ids.push_back(sep_id_);
  return ids;
}

std::string Tokenizer::fingerprint() const {
  // FNV-1a over the sorted vocabulary and the options; stable across runs and machines.
  std::map<int64_t, std::string> by_id;
  for (const auto& [token, id] : spec_.vocab) by_id[id] = token;
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
  };
  for (const auto& [id, token] : by_id) mix(std::to_string(id) + "\t" + token);
  const NormalizerOptions& o = spec_.normalizer;
  mix(std::string{char('0' + o.clean_text), char('0' + o.handle_chinese_chars), char('0' + o.strip_accents),
                  char('0' + o.lowercase)});
  mix(spec_.continuing_prefix + "|" + std::to_string(spec_.max_input_chars_per_word));
  std::ostringstream out;
  out << "wordpiece-" << std::hex << h;
  return out.str();
}

}  // namespace angle::text
