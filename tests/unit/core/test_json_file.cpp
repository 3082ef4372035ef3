// json_field's integer rule: only integers the target type holds exactly (nlohmann alone converts
// 1e30, 2.5 or -1 silently, some of it undefined behaviour).
#include <boost/test/unit_test.hpp>

#include "core/error.h"
#include "core/json_file.h"

using angle::json_field;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(json_file)

BOOST_AUTO_TEST_CASE(integers_must_fit_the_type) {
  const json j = json::parse(R"({"small": 5, "negative": -1, "float": 2.5, "huge": 1e30, "big": 4294967296,
                                 "max64": 18446744073709551615, "text": "5"})");
  BOOST_TEST(json_field<int>(j, "small", "f") == 5);
  BOOST_TEST(json_field<int>(j, "negative", "f") == -1);
  BOOST_TEST(json_field<int64_t>(j, "big", "f") == 4294967296LL);
  BOOST_TEST(json_field<uint64_t>(j, "max64", "f") == 18446744073709551615ULL);
  BOOST_CHECK_THROW(json_field<uint64_t>(j, "negative", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int>(j, "float", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int64_t>(j, "huge", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int>(j, "big", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int64_t>(j, "max64", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int>(j, "text", "f"), angle::Error);
  BOOST_CHECK_THROW(json_field<int>(j, "absent", "f"), angle::Error);
  BOOST_TEST(json_field<double>(j, "small", "f") == 5.0);  // a number may be an integer
}

BOOST_AUTO_TEST_SUITE_END()
