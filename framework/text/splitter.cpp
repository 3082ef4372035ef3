#include "text/splitter.h"

#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utext.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/unicode.h"

namespace angle::text {
namespace {

using nlohmann::json;
using Piece = TextSplitter::Piece;
using Range = std::pair<size_t, size_t>;

// Oniguruma's \s is White_Space (9-D, 85, Z*); ICU's omits \v and NEL.
std::string oniguruma_to_icu(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char c = pattern[++i];
      if (c == 's') out += "\\p{White_Space}";
      else if (c == 'S') out += "\\P{White_Space}";
      else (out += '\\') += c;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

class Regex {
 public:
  Regex(const std::string& pattern, bool literal, const std::string& where) {
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse{};
    const std::string source = literal ? pattern : oniguruma_to_icu(pattern);
    pattern_.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(source), literal ? UREGEX_LITERAL : 0,
                                              parse, status));
    ANGLE_CHECK(U_SUCCESS(status), where, ": cannot compile the pattern '", pattern, "' (", u_errorName(status),
                " at offset ", parse.offset, ")");
  }
  // Byte ranges of successive matches (ICU reports UTF-8 offsets for a UTF-8 UText).
  std::vector<Range> find_all(std::string_view text) const {
    UErrorCode status = U_ZERO_ERROR;
    UText* utext = utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status);
    std::unique_ptr<icu::RegexMatcher> matcher(pattern_->matcher(status));
    ANGLE_CHECK(U_SUCCESS(status), "ICU regex: ", u_errorName(status));
    matcher->reset(utext);
    std::vector<Range> out;
    while (matcher->find(status) && U_SUCCESS(status))
      out.emplace_back(static_cast<size_t>(matcher->start64(status)), static_cast<size_t>(matcher->end64(status)));
    matcher.reset();
    utext_close(utext);
    ANGLE_CHECK(U_SUCCESS(status), "ICU regex: ", u_errorName(status));
    return out;
  }

 private:
  std::shared_ptr<icu::RegexPattern> pattern_;
};

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return Behavior::removed;
  if (name == "Isolated") return Behavior::isolated;
  if (name == "MergedWithPrevious") return Behavior::merged_with_previous;
  if (name == "MergedWithNext") return Behavior::merged_with_next;
  if (name == "Contiguous") return Behavior::contiguous;
  ANGLE_FAIL(where, ": unknown split behavior '", name, "'");
}

// HF's NormalizedString::split: the text cut at the matches, pieces kept per `behavior`.
void split_pieces(std::vector<Piece>& pieces, const Regex& regex, Behavior behavior, bool invert = false) {
  std::vector<Piece> out;
  for (Piece& piece : pieces) {
    std::vector<std::pair<Range, bool>> parts;  // (range, is_match), covering the piece
    size_t previous = 0;
    for (const Range& m : regex.find_all(piece.text)) {
      if (m.first != previous) parts.push_back({{previous, m.first}, invert});
      parts.push_back({m, !invert});
      previous = m.second;
    }
    if (previous != piece.text.size()) parts.push_back({{previous, piece.text.size()}, invert});
    std::vector<Range> kept;
    bool previous_match = false;
    switch (behavior) {
      case Behavior::removed:
        for (auto& [r, match] : parts)
          if (!match) kept.push_back(r);
        break;
      case Behavior::isolated:
        for (auto& [r, match] : parts) kept.push_back(r);
        break;
      case Behavior::merged_with_previous:
        for (auto& [r, match] : parts) {
          if (match && !previous_match && !kept.empty()) kept.back().second = r.second;
          else kept.push_back(r);
          previous_match = match;
        }
        break;
      case Behavior::contiguous:
        for (auto& [r, match] : parts) {
          if (match == previous_match && !kept.empty()) kept.back().second = r.second;
          else kept.push_back(r);
          previous_match = match;
        }
        break;
      case Behavior::merged_with_next:
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
          if (it->second && !previous_match && !kept.empty()) kept.back().first = it->first.first;
          else kept.push_back(it->first);
          previous_match = it->second;
        }
        std::reverse(kept.begin(), kept.end());
        break;
    }
    for (const Range& r : kept)
      if (r.second > r.first) out.push_back({piece.text.substr(r.first, r.second - r.first), piece.at_text_start && r.first == 0});
  }
  pieces.swap(out);
}

// A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}.
Regex pattern_of(const json& spec, const std::string& where) {
  const json& pattern = spec.at("pattern");
  if (pattern.contains("String")) return Regex(pattern["String"].get<std::string>(), true, where);
  if (pattern.contains("Regex")) return Regex(pattern["Regex"].get<std::string>(), false, where);
  ANGLE_FAIL(where, ": pattern must be {\"String\": ...} or {\"Regex\": ...}, found ", pattern.dump());
}

void replace_all(std::string& text, const Regex& regex, const std::string& content) {
  std::string out;
  size_t previous = 0;
  for (const Range& m : regex.find_all(text)) {
    out.append(text, previous, m.first - previous);
    out += content;
    previous = m.second;
  }
  out.append(text, previous, std::string::npos);
  text.swap(out);
}

void unicode_normalize(std::string& text, const std::string& form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = form == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                                       : form == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                                       : form == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                                                        : icu::Normalizer2::getNFKDInstance(status);
  ANGLE_CHECK(U_SUCCESS(status), "ICU: cannot load the ", form, " normalizer: ", u_errorName(status));
  icu::UnicodeString normalized = normalizer->normalize(icu::UnicodeString::fromUTF8(text), status);
  ANGLE_CHECK(U_SUCCESS(status), "ICU: ", form, " failed: ", u_errorName(status));
  text.clear();
  normalized.toUTF8String(text);
}

template <typename Each>
void map_chars(std::string& text, Each each) {  // rebuilds `text` from each(code point, out)
  std::u32string out;
  for (char32_t c : utf8_to_u32(text)) each(c, out);
  text = u32_to_utf8(out);
}

void add_normalizers(const json& spec, const std::string& path, std::vector<TextSplitter::Normalize>& out) {
  if (spec.is_null()) return;
  const std::string type = spec.value("type", "");
  const std::string where = path + " normalizer " + type;
  if (type == "Sequence") {
    for (const json& inner : spec.at("normalizers")) add_normalizers(inner, path, out);
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    out.push_back([type](std::string& t) { unicode_normalize(t, type); });
  } else if (type == "Lowercase") {
    out.push_back([](std::string& t) { map_chars(t, [](char32_t c, std::u32string& o) { append_lowercase(c, o); }); });
  } else if (type == "StripAccents") {
    out.push_back([](std::string& t) {
      map_chars(t, [](char32_t c, std::u32string& o) {
        if (!(U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK)) o.push_back(c);
      });
    });
  } else if (type == "Strip") {
    const bool left = spec.value("strip_left", true), right = spec.value("strip_right", true);
    out.push_back([left, right](std::string& t) {
      std::u32string s = utf8_to_u32(t);
      size_t begin = 0, end = s.size();
      while (left && begin < end && is_whitespace(s[begin])) ++begin;
      while (right && end > begin && is_whitespace(s[end - 1])) --end;
      t = u32_to_utf8(std::u32string_view(s).substr(begin, end - begin));
    });
  } else if (type == "Prepend") {
    const std::string prefix = spec.at("prepend").get<std::string>();
    out.push_back([prefix](std::string& t) {
      if (!t.empty()) t.insert(0, prefix);
    });
  } else if (type == "Replace") {
    auto regex = std::make_shared<Regex>(pattern_of(spec, where));
    const std::string content = spec.at("content").get<std::string>();
    out.push_back([regex, content](std::string& t) { replace_all(t, *regex, content); });
  } else {
    ANGLE_FAIL(path, ": normalizer type '", type,
               "' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace, Sequence)");
  }
}

// GPT-2's pre-tokenization pattern, which ByteLevel applies when use_regex is set.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void add_pre_tokenizers(const json& spec, const std::string& path, std::vector<TextSplitter::PreTokenize>& out) {
  if (spec.is_null()) return;
  const std::string type = spec.value("type", "");
  const std::string where = path + " pre_tokenizer " + type;
  if (type == "Sequence") {
    for (const json& inner : spec.at("pretokenizers")) add_pre_tokenizers(inner, path, out);
  } else if (type == "Split") {
    auto regex = std::make_shared<Regex>(pattern_of(spec, where));
    const Behavior behavior = parse_behavior(spec.value("behavior", "Isolated"), where);
    const bool invert = spec.value("invert", false);
    out.push_back([regex, behavior, invert](std::vector<Piece>& p) { split_pieces(p, *regex, behavior, invert); });
  } else if (type == "ByteLevel") {
    const bool add_prefix_space = spec.value("add_prefix_space", true);
    std::shared_ptr<Regex> regex;
    if (spec.value("use_regex", true)) regex = std::make_shared<Regex>(kGpt2Pattern, false, where);
    out.push_back([add_prefix_space, regex](std::vector<Piece>& pieces) {
      if (add_prefix_space)
        for (Piece& p : pieces)
          if (p.text.front() != ' ') p.text.insert(0, " ");
      if (regex) split_pieces(pieces, *regex, Behavior::isolated);
      for (Piece& p : pieces) {
        std::string mapped;
        for (unsigned char b : p.text) mapped += byte_level_char(b);
        p.text.swap(mapped);
      }
    });
  } else if (type == "Metaspace") {
    const std::string replacement = spec.value("replacement", "\u2581");
    // Files older than tokenizers 0.19 have add_prefix_space instead of prepend_scheme.
    const std::string scheme = spec.contains("prepend_scheme") && !spec["prepend_scheme"].is_null()
                                   ? spec["prepend_scheme"].get<std::string>()
                                   : (spec.value("add_prefix_space", true) ? "always" : "never");
    ANGLE_CHECK(scheme == "always" || scheme == "first" || scheme == "never", where, ": unknown prepend_scheme '",
                scheme, "'");
    const bool split = spec.value("split", true);
    auto space = std::make_shared<Regex>(" ", true, where), marker = std::make_shared<Regex>(replacement, true, where);
    out.push_back([=](std::vector<Piece>& pieces) {
      for (Piece& p : pieces) {
        replace_all(p.text, *space, replacement);
        const bool prepend = scheme == "always" || (scheme == "first" && p.at_text_start);
        if (prepend && p.text.compare(0, replacement.size(), replacement) != 0) p.text.insert(0, replacement);
      }
      if (split) split_pieces(pieces, *marker, Behavior::merged_with_next);
    });
  } else if (type == "Digits") {
    auto digit = std::make_shared<Regex>(R"(\p{N})", false, where);
    const Behavior behavior = spec.value("individual_digits", false) ? Behavior::isolated : Behavior::contiguous;
    out.push_back([digit, behavior](std::vector<Piece>& p) { split_pieces(p, *digit, behavior); });
  } else {
    ANGLE_FAIL(path, ": pre_tokenizer type '", type,
               "' is not supported with a BPE model (ByteLevel, Split, Metaspace, Digits, Sequence)");
  }
}

}  // namespace

const std::string& byte_level_char(unsigned char byte) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      t[static_cast<size_t>(b)] = u32_to_utf8(std::u32string(1, c));
    }
    return t;
  }();
  return table[byte];
}

TextSplitter::TextSplitter(const json& normalizer, const json& pre_tokenizer, const std::string& path) {
  try {
    add_normalizers(normalizer, path, normalizers_);
    add_pre_tokenizers(pre_tokenizer, path, pre_tokenizers_);
  } catch (const json::exception& e) {
    ANGLE_FAIL(path, ": unexpected normalizer or pre_tokenizer structure: ", e.what());
  }
}

std::vector<std::string> TextSplitter::words(std::string_view segment, bool at_text_start) const {
  std::string text(segment);
  for (const Normalize& normalize : normalizers_) normalize(text);
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({std::move(text), at_text_start});
  for (const PreTokenize& pre_tokenize : pre_tokenizers_) pre_tokenize(pieces);
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) out.push_back(std::move(p.text));
  return out;
}

}  // namespace angle::text
