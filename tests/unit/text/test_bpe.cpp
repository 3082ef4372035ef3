// Closed-form cases for the BPE model and the BPE splitter (expected values checked against HF
// `tokenizers`); parity on 21,563 real sentences and hard strings is
// tests/oracle/check_llm_tokenizers.py.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "text/bpe.h"
#include "text/splitter.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;
using Ids = std::vector<int64_t>;
using Words = std::vector<std::string>;
using nlohmann::json;

namespace {

text::BpeSpec abc_spec(std::vector<std::pair<std::string, std::string>> merges) {
  text::BpeSpec spec;
  spec.vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"aa", 5}, {"<unk>", 6}, {"abc", 7}};
  spec.merges = std::move(merges);
  spec.source = "test";
  return spec;
}

Ids ids_of(const text::Bpe& bpe, const std::string& word) {
  Ids out;
  bpe.append_ids(word, out);
  return out;
}

Words split_with(const json& pre_tokenizer, const std::string& text, bool at_start = true) {
  return text::TextSplitter(json(), pre_tokenizer, "test").words(text, at_start);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bpe)

BOOST_AUTO_TEST_CASE(lowest_rank_merges_first) {
  BOOST_TEST(ids_of(text::Bpe(abc_spec({{"b", "c"}, {"a", "b"}})), "abc") == (Ids{0, 4}), boost::test_tools::per_element());
  BOOST_TEST(ids_of(text::Bpe(abc_spec({{"a", "b"}, {"b", "c"}})), "abc") == (Ids{3, 2}), boost::test_tools::per_element());
  // A merge that needs an earlier merge's result applies after it.
  BOOST_TEST(ids_of(text::Bpe(abc_spec({{"b", "c"}, {"a", "bc"}})), "abc") == (Ids{7}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(equal_ranks_merge_leftmost_first) {
  BOOST_TEST(ids_of(text::Bpe(abc_spec({{"a", "a"}})), "aaa") == (Ids{5, 0}), boost::test_tools::per_element());
  BOOST_TEST(ids_of(text::Bpe(abc_spec({{"a", "a"}})), "aaaa") == (Ids{5, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unknown_characters_fuse_or_fall_back_to_bytes) {
  auto spec = abc_spec({});
  spec.unk_token = "<unk>";
  BOOST_TEST(ids_of(text::Bpe(spec), "axyb") == (Ids{0, 6, 6, 1}), boost::test_tools::per_element());
  spec.fuse_unk = true;
  BOOST_TEST(ids_of(text::Bpe(spec), "axyb") == (Ids{0, 6, 1}), boost::test_tools::per_element());
  spec.byte_fallback = true;
  spec.vocab["<0xC3>"] = 10;
  spec.vocab["<0xA9>"] = 11;
  // é is C3 A9: both bytes known; x has no byte token, so it stays unknown.
  BOOST_TEST(ids_of(text::Bpe(spec), "a\u00e9x") == (Ids{0, 10, 11, 6}), boost::test_tools::per_element());
  // Without an unknown token an unknown character is dropped (as HF does).
  BOOST_TEST(ids_of(text::Bpe(abc_spec({})), "axb") == (Ids{0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ignore_merges_takes_a_whole_word_from_the_vocabulary) {
  auto spec = abc_spec({{"a", "b"}});
  BOOST_TEST(ids_of(text::Bpe(spec), "abc") == (Ids{3, 2}), boost::test_tools::per_element());
  spec.ignore_merges = true;
  BOOST_TEST(ids_of(text::Bpe(spec), "abc") == (Ids{7}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_merge_outside_the_vocabulary_is_an_error) {
  BOOST_TEST(error_of([] { text::Bpe(abc_spec({{"c", "a"}})); }).find("model.merges[0] needs 'ca'") != std::string::npos);
  auto spec = abc_spec({});
  spec.unk_token = "<missing>";
  BOOST_TEST(error_of([&] { text::Bpe{spec}; }).find("unk_token '<missing>'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(byte_level_maps_bytes_to_printable_characters) {
  BOOST_TEST(text::byte_level_char('a') == "a");
  BOOST_TEST(text::byte_level_char(' ') == "\u0120");   // Ġ
  BOOST_TEST(text::byte_level_char('\n') == "\u010a");  // Ċ
  BOOST_TEST(text::byte_level_char(0xAD) == "\u0143");  // Ń: the soft hyphen is not printable
  BOOST_TEST(split_with({{"type", "ByteLevel"}, {"add_prefix_space", false}}, "Hi there\n") ==
                 (Words{"Hi", "\u0120there", "\u010a"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(split_behaviors_match_hf) {
  auto split = [](const std::string& behavior) {
    return split_with({{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}}, "a-b--c");
  };
  BOOST_TEST(split("Removed") == (Words{"a", "b", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split("Isolated") == (Words{"a", "-", "b", "-", "-", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split("MergedWithPrevious") == (Words{"a-", "b-", "-", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split("MergedWithNext") == (Words{"a", "-b", "-", "-c"}), boost::test_tools::per_element());
  BOOST_TEST(split("Contiguous") == (Words{"a", "-", "b", "--", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split_with({{"type", "Digits"}, {"individual_digits", false}}, "ab123c4") ==
                 (Words{"ab", "123", "c", "4"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(metaspace_prepends_first_only_at_the_start_of_the_text) {
  const json first = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", true}};
  BOOST_TEST(split_with(first, "hello world") == (Words{"\u2581hello", "\u2581world"}), boost::test_tools::per_element());
  BOOST_TEST(split_with(first, "hello world", false) == (Words{"hello", "\u2581world"}), boost::test_tools::per_element());
  json whole = first;
  whole["split"] = false;
  BOOST_TEST(split_with(whole, "a b") == (Words{"\u2581a\u2581b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(oniguruma_whitespace_includes_vertical_tab_and_nel) {
  // HF's engine counts \v and U+0085 as \s; ICU alone would not.
  const json split = {{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Removed"}};
  BOOST_TEST(split_with(split, "a\vb\u0085c") == (Words{"a", "b", "c"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
