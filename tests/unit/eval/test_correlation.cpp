#include <boost/test/unit_test.hpp>
#include <cmath>

#include "eval/correlation.h"

using namespace angle::eval;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(correlation)

BOOST_AUTO_TEST_CASE(ties_get_the_average_rank) {
  BOOST_TEST(average_ranks({10, 20, 20, 5, 20}) == (std::vector<double>{2, 4, 4, 1, 4}), tt::per_element());
  BOOST_TEST(average_ranks({1, 1}) == (std::vector<double>{1.5, 1.5}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(pearson_closed_form) {
  // x = 1..4, y = 2,4,5,9: deviations (-1.5,-.5,.5,1.5) and (-3,-1,0,4): sxy = 11, sxx = 5, syy = 26.
  BOOST_TEST(pearson({1, 2, 3, 4}, {2, 4, 5, 9}) == 11.0 / std::sqrt(5.0 * 26.0), tt::tolerance(1e-12));
  BOOST_TEST(pearson({1, 2, 3}, {-1, -2, -3}) == -1.0, tt::tolerance(1e-12));
  BOOST_TEST(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
}

BOOST_AUTO_TEST_CASE(spearman_with_ties_closed_form) {
  // x ranks 1, 2.5, 2.5, 4 ; y ranks 1, 2, 3, 4 -> sxy = 4.5, sxx = 4.5, syy = 5.
  BOOST_TEST(spearman({1, 2, 2, 3}, {10, 20, 30, 40}) == 4.5 / std::sqrt(4.5 * 5.0), tt::tolerance(1e-12));
  // Any strictly monotone transform gives 1.
  BOOST_TEST(spearman({0.1, 0.5, 0.3, 0.9}, {1, 25, 9, 81}) == 1.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_SUITE_END()
