#define BOOST_TEST_MODULE angle_unit_tests
#include <boost/test/unit_test.hpp>
