#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "model/safetensors.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;

namespace {

std::string write_sample(const testing::TempDir& tmp) {
  std::string path = tmp.file("sample.safetensors");
  model::write_safetensors(path, {{"a", at::arange(6, at::kFloat).view({2, 3})}, {"b", at::tensor({7, 8}, at::kLong)}},
                           {{"format", "pt"}});
  return path;
}

// Rewrites the 8-byte header length and JSON header of a file, keeping the data.
void replace_header(const std::string& path, const std::string& header_json, uint64_t data_bytes_to_keep) {
  std::string bytes = testing::read_text(path);
  uint64_t old_size = 0;
  for (int i = 7; i >= 0; --i) old_size = (old_size << 8) | static_cast<unsigned char>(bytes[i]);
  std::string data = bytes.substr(8 + old_size, data_bytes_to_keep);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header_json.size() >> (8 * i)) & 0xff);
  testing::write_text(path, out + header_json + data);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(round_trip_preserves_values_dtypes_and_metadata) {
  testing::TempDir tmp;
  model::SafetensorsFile file(write_sample(tmp));
  BOOST_TEST(file.tensors().size() == 2u);
  BOOST_TEST(at::equal(file.load("a"), at::arange(6, at::kFloat).view({2, 3})));
  BOOST_TEST(file.load("b").scalar_type() == at::kLong);
  BOOST_TEST(file.load("b")[1].item<int64_t>() == 8);
  BOOST_TEST(file.metadata().at("format") == "pt");
}

BOOST_AUTO_TEST_CASE(a_range_of_elements_equals_the_same_range_of_the_whole_tensor) {
  testing::TempDir tmp;
  model::SafetensorsFile file(write_sample(tmp));
  for (int64_t first = 0; first <= 6; ++first)
    for (int64_t count = 0; first + count <= 6; ++count)
      BOOST_TEST(at::equal(file.load_range("a", first, count), file.load("a").reshape(-1).narrow(0, first, count)));
  BOOST_TEST(file.load_range("b", 1, 1).item<int64_t>() == 8);
  BOOST_TEST(error_of([&] { file.load_range("a", 4, 3); }).find("elements [4, 7) of tensor 'a' lie outside its 6") !=
             std::string::npos);
  BOOST_TEST(error_of([&] { file.load_range("a", -1, 1); }).find("lie outside") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(truncated_file_is_rejected) {
  testing::TempDir tmp;
  std::string path = write_sample(tmp);
  std::string bytes = testing::read_text(path);
  testing::write_text(path, bytes.substr(0, bytes.size() - 5));
  std::string message = error_of([&] { model::SafetensorsFile f(path); });
  BOOST_TEST(message.find("past the end of the data") != std::string::npos, message);
  testing::write_text(path, bytes.substr(0, 5));
  message = error_of([&] { model::SafetensorsFile f(path); });
  BOOST_TEST(message.find("truncated safetensors file") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(header_length_past_end_of_file_is_rejected) {
  testing::TempDir tmp;
  std::string path = write_sample(tmp);
  std::string bytes = testing::read_text(path);
  bytes[5] = '\x01';  // header length becomes ~2^40
  testing::write_text(path, bytes);
  std::string message = error_of([&] { model::SafetensorsFile f(path); });
  BOOST_TEST(message.find("header length") != std::string::npos, message);
  BOOST_TEST(message.find("runs past the end of the file") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(offsets_and_sizes_are_checked) {
  testing::TempDir tmp;
  std::string path = write_sample(tmp);
  replace_header(path, R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24);
  BOOST_TEST(error_of([&] { model::SafetensorsFile f(path); }).find("need 24") != std::string::npos);
  replace_header(path, R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})", 24);
  BOOST_TEST(error_of([&] { model::SafetensorsFile f(path); }).find("past the end of the data") != std::string::npos);
  replace_header(path, R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}})", 24);
  BOOST_TEST(error_of([&] { model::SafetensorsFile f(path); }).find("unsupported dtype Q4") != std::string::npos);
  replace_header(path, R"({"a": [1, 2)", 24);
  BOOST_TEST(error_of([&] { model::SafetensorsFile f(path); }).find("header is not valid JSON") != std::string::npos);
  replace_header(path, R"({"a":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}})", 24);
  BOOST_TEST(error_of([&] { model::SafetensorsFile f(path); }).find("invalid shape") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
