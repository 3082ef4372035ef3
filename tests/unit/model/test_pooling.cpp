// Each pooling strategy against values computed by hand, with padding in the batch.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "model/pooling.h"
#include "tiny_model.h"

using namespace angle;
using model::Pooling;

namespace {

// Two sequences, D = 2: row 0 has 3 tokens, row 1 has 1 token + 2 padding positions
// whose values (100) must never leak into a masked result.
at::Tensor hidden() {
  return at::tensor({1.f, -1.f, 3.f, -5.f, 2.f, -3.f,     //
                     4.f, -2.f, 100.f, 100.f, 100.f, 100.f})
      .view({2, 3, 2});
}
at::Tensor mask() { return at::tensor({1, 1, 1, 1, 0, 0}, at::kLong).view({2, 3}); }
bool close(const at::Tensor& a, std::vector<float> expected) {
  return at::allclose(a, at::tensor(expected).view({2, 2}));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pooling)

BOOST_AUTO_TEST_CASE(cls_mean_and_their_average) {
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("cls")), {1, -1, 4, -2}));
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("mean")), {2, -3, 4, -2}));
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("avg")), {2, -3, 4, -2}));
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("cls_avg")), {1.5, -2, 4, -2}));
}

BOOST_AUTO_TEST_CASE(max_counts_padding_as_zero_like_angle) {
  // Row 0 dim 1: all tokens negative -> max is -1. Row 1 dim 1: the one token is -2, but the
  // padded positions contribute 0 (AnglE multiplies by the mask before max).
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("max")), {3, -1, 4, 0}));
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("cls_max")), {2, -1, 4, -1}));
}

BOOST_AUTO_TEST_CASE(last_respects_padding_side) {
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("last")), {2, -3, 4, -2}));
  at::Tensor left_mask = at::tensor({1, 1, 1, 0, 0, 1}, at::kLong).view({2, 3});
  at::Tensor left = model::pool(hidden(), left_mask, Pooling::parse("last"), model::PaddingSide::left);
  BOOST_TEST(close(left, {2, -3, 100, 100}));
}

BOOST_AUTO_TEST_CASE(index_and_names) {
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("1")), {3, -5, 100, 100}));
  BOOST_TEST(close(model::pool(hidden(), mask(), Pooling::parse("-1")), {2, -3, 100, 100}));
  BOOST_TEST(Pooling::parse("avg").name() == "mean");
  BOOST_TEST(testing::error_of([] { Pooling::parse("median"); }).find("unknown pooling 'median'") != std::string::npos);
  BOOST_TEST(testing::error_of([] { model::pool(hidden(), mask(), Pooling::parse("7")); }).find("outside") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
