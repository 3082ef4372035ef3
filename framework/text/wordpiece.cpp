#include "text/wordpiece.h"

#include <map>
#include <sstream>

#include "core/error.h"
#include "text/unicode.h"

namespace angle::text {

WordPiece::WordPiece(TokenizerSpec spec) : spec_(std::move(spec)) {
  auto it = spec_.vocab.find(spec_.unk_token);
  ANGLE_CHECK(it != spec_.vocab.end(), spec_.source, ": special token '", spec_.unk_token, "' is not in the vocabulary");
  unk_id_ = it->second;
}

std::vector<std::u32string> WordPiece::pre_tokenize(std::u32string_view input) const {
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

void WordPiece::wordpiece(const std::u32string& word, std::vector<int64_t>& out) const {
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

void WordPiece::append_ids(std::string_view segment, bool, std::vector<int64_t>& out) const {
  for (const std::u32string& word : pre_tokenize(utf8_to_u32(segment))) wordpiece(word, out);
}

std::string WordPiece::fingerprint() const {
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
