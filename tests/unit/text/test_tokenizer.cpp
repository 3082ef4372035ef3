// Closed-form cases for each rule of the BERT basic tokenizer and WordPiece; parity with HF on
// ~30,000 real sentences is tests/oracle/check_tokenizer.py.
#include <boost/test/unit_test.hpp>

#include "text/tokenizer.h"
#include "text/unicode.h"
#include "text/wordpiece.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;

namespace {

text::TokenizerSpec tiny_spec(bool lowercase = true) { return testing::tiny_tokenizer_spec(lowercase); }

std::vector<std::string> words(const text::Tokenizer& t, const std::string& s) {
  std::vector<std::string> out;
  const auto& wordpiece = dynamic_cast<const text::WordPiece&>(t.pieces());
  for (const auto& w : wordpiece.pre_tokenize(text::utf8_to_u32(s))) out.push_back(text::u32_to_utf8(w));
  return out;
}

using Ids = std::vector<int64_t>;

}  // namespace

BOOST_AUTO_TEST_SUITE(tokenizer)

BOOST_AUTO_TEST_CASE(basic_tokenizer_splits_whitespace_and_punctuation) {
  text::Tokenizer t(tiny_spec());
  BOOST_TEST(words(t, "Hello,  world!\tA\u00a0b") == (std::vector<std::string>{"hello", ",", "world", "!", "a", "b"}),
             boost::test_tools::per_element());
  // ASCII symbols count as punctuation (BERT), as do Unicode P* characters.
  BOOST_TEST(words(t, "a$b\u00bfc") == (std::vector<std::string>{"a", "$", "b", "\u00bf", "c"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(normalizer_cleans_controls_and_isolates_cjk) {
  text::Tokenizer t(tiny_spec());
  // \x01 (Cc) and U+200B (Cf) vanish, U+FFFD too; CJK characters become words of their own.
  BOOST_TEST(words(t, "ab\x01" "c\u200bd\ufffd中文") == (std::vector<std::string>{"abcd", "中", "文"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(accents_are_stripped_only_when_configured) {
  text::Tokenizer uncased(tiny_spec(true));
  text::Tokenizer cased(tiny_spec(false));
  BOOST_TEST(words(uncased, "Café ÉTÉ") == (std::vector<std::string>{"cafe", "ete"}), boost::test_tools::per_element());
  BOOST_TEST(words(cased, "Café") == (std::vector<std::string>{"Café"}), boost::test_tools::per_element());
  // U+0130 lower-cases to i + combining dot; the dot is then stripped as a nonspacing mark.
  BOOST_TEST(words(uncased, "\u0130") == (std::vector<std::string>{"i"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wordpiece_is_greedy_longest_match) {
  text::Tokenizer t(tiny_spec());
  // unaffable -> un ##aff ##able ; cats -> cat ##s ; "runs" has no "##s"-compatible split after "run"? it does.
  BOOST_TEST(t.tokenize_ids("unaffable cats runs") == (Ids{10, 11, 12, 6, 13, 21, 13}), boost::test_tools::per_element());
  // A word with any unmatched remainder is a single [UNK], not a partial split.
  BOOST_TEST(t.tokenize_ids("catx the") == (Ids{1, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(words_longer_than_the_limit_are_unknown) {
  auto spec = tiny_spec();
  spec.max_input_chars_per_word = 3;
  text::Tokenizer t(spec);
  BOOST_TEST(t.tokenize_ids("cat cats") == (Ids{6, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(special_tokens_in_text_are_matched_raw) {
  text::Tokenizer t(tiny_spec());
  // "[MASK]" is not lower-cased or split; "[mask]" is ordinary text.
  BOOST_TEST(t.tokenize_ids("the [MASK] sat") == (Ids{5, 4, 7}), boost::test_tools::per_element());
  BOOST_TEST(t.tokenize_ids("[mask]").front() != 4);
}

BOOST_AUTO_TEST_CASE(encode_adds_cls_sep_and_truncates_inside) {
  text::Tokenizer t(tiny_spec());
  BOOST_TEST(t.encode("the cat sat on the mat", 512) == (Ids{2, 5, 6, 7, 8, 5, 9, 3}), boost::test_tools::per_element());
  BOOST_TEST(t.encode("the cat sat on the mat", 4) == (Ids{2, 5, 6, 3}), boost::test_tools::per_element());
  BOOST_TEST(t.encode("", 8) == (Ids{2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_special_token_is_an_error) {
  auto spec = tiny_spec();
  spec.vocab.erase("[UNK]");
  BOOST_TEST(error_of([&] { text::Tokenizer t(spec); }).find("special token '[UNK]' is not in the vocabulary") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(loads_vocab_txt_layout_and_rejects_a_bare_directory) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  testing::write_text(tmp.file("tokenizer_config.json"), R"({"do_lower_case": false})");
  auto t = text::Tokenizer::from_model_dir(tmp.path.string());
  const auto& wordpiece = dynamic_cast<const text::WordPiece&>(t.pieces());
  BOOST_TEST(!wordpiece.spec().normalizer.lowercase);
  BOOST_TEST(!wordpiece.spec().normalizer.strip_accents);  // null strip_accents follows lowercase
  BOOST_TEST(t.encode("Hello", 8) == (Ids{2, 1, 3}), boost::test_tools::per_element());  // cased: Hello is unknown
  testing::TempDir empty;
  BOOST_TEST(error_of([&] { text::Tokenizer::from_model_dir(empty.path.string()); }).find("no tokenizer.json or vocab.txt") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(fingerprint_changes_with_vocabulary_and_options) {
  auto a = text::Tokenizer(tiny_spec()).fingerprint();
  BOOST_TEST(a == text::Tokenizer(tiny_spec()).fingerprint());
  BOOST_TEST(a != text::Tokenizer(tiny_spec(false)).fingerprint());
  auto spec = tiny_spec();
  spec.vocab["extra"] = 99;
  BOOST_TEST(a != text::Tokenizer(spec).fingerprint());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(prompts)

BOOST_AUTO_TEST_CASE(prompt_wraps_the_text) {
  text::Tokenizer t(tiny_spec());
  // "hello {text} !" around "the cat": [CLS] hello the cat ! [SEP]
  BOOST_TEST(t.encode_prompted("hello {text} !", "the cat", 16) == (Ids{2, 18, 5, 6, 16, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(t.encode_prompted("", "the cat", 16) == t.encode("the cat", 16), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(truncation_cuts_the_text_not_the_prompt_tail) {
  text::Tokenizer t(tiny_spec());
  // max 6: [CLS] hello <2 text tokens> ! [SEP]; plain truncation would have cut the "!".
  BOOST_TEST(t.encode_prompted("hello {text} !", "the cat sat on the mat", 6) == (Ids{2, 18, 5, 6, 16, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(error_of([&] { t.encode_prompted("hello world {text} !", "the", 4); }).find("alone needs 5 tokens") !=
             std::string::npos);
  BOOST_TEST(error_of([&] { t.encode_prompted("no placeholder", "the", 8); }).find("no {text} placeholder") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
