// Character classes and transforms of HuggingFace's BertNormalizer / BertPreTokenizer, on
// Unicode code points, backed by ICU. The Rust crate behind `tokenizers` uses older Unicode
// tables; the two agree on every character assigned before Unicode 9.
#pragma once
#include <string>
#include <string_view>

namespace angle::text {

// Decodes valid UTF-8 (callers validate first; ill-formed bytes become U+FFFD).
std::u32string utf8_to_u32(std::string_view text);
std::string u32_to_utf8(std::u32string_view text);

bool is_whitespace(char32_t c);    // \t \n \r, or White_Space
bool is_control(char32_t c);       // Cc Cf Cn Co Cs except \t \n \r
bool is_punctuation(char32_t c);   // ASCII punctuation or any P* category
bool is_chinese_char(char32_t c);  // the CJK blocks BERT isolates
bool is_nonspacing_mark(char32_t c);

// NFD decomposition (canonical), as used before dropping accents.
std::u32string nfd(const std::u32string& text);
// Context-free full lower-casing per code point (Rust's char::to_lowercase).
void append_lowercase(char32_t c, std::u32string& out);

}  // namespace angle::text
