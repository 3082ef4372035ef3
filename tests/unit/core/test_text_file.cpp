#include <boost/test/unit_test.hpp>

#include "core/text_file.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;

BOOST_AUTO_TEST_SUITE(text_file)

BOOST_AUTO_TEST_CASE(reads_lines_and_strips_crlf) {
  testing::TempDir tmp;
  testing::write_text(tmp.file("a.txt"), "one\r\ntwo\n\nlast without newline");
  auto lines = read_utf8_lines(tmp.file("a.txt"));
  BOOST_TEST(lines == (std::vector<std::string>{"one", "two", "", "last without newline"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(empty_file_is_an_error) {
  testing::TempDir tmp;
  testing::write_text(tmp.file("empty.txt"), "");
  BOOST_TEST(error_of([&] { read_utf8_lines(tmp.file("empty.txt")); }).find("empty.txt: file is empty") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_names_file_line_and_byte) {
  testing::TempDir tmp;
  testing::write_text(tmp.file("bad.txt"), "fine\nab\xff" "cd\n");
  std::string message = error_of([&] { read_utf8_lines(tmp.file("bad.txt")); });
  BOOST_TEST(message.find("bad.txt:2: not valid UTF-8 (byte 3") != std::string::npos, message);
  BOOST_TEST(find_invalid_utf8("\xc3\xa9t\xc3\xa9") == std::string::npos);  // été
  BOOST_TEST(find_invalid_utf8("\xe4\xb8") == 0u);                          // truncated 3-byte sequence
  BOOST_TEST(find_invalid_utf8("a\xed\xa0\x80") == 1u);                     // encoded surrogate
}

BOOST_AUTO_TEST_CASE(split_keeps_empty_fields) {
  BOOST_TEST(split("a\t\tb\t", '\t') == (std::vector<std::string>{"a", "", "b", ""}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
