// The tests' fault injection (core/test_hooks.h), read once from the environment: the points it
// names fire on their rank (and step) only, and malformed values are errors naming the variable.
#include <boost/test/unit_test.hpp>
#include <cstdlib>

#include "core/test_hooks.h"
#include "tiny_model.h"

using namespace angle;

namespace {

// The hooks that these variables give; both variables are unset again, also when parsing throws.
TestHooks hooks_with(const char* fault, const char* skip, const char* salt = nullptr) {
  struct Unset {
    ~Unset() {
      ::unsetenv("ANGLE_FAULT");
      ::unsetenv("ANGLE_TEST_SKIP_RESTORE");
      ::unsetenv("ANGLE_TEST_DROPOUT_SALT");
    }
  } unset;
  fault ? ::setenv("ANGLE_FAULT", fault, 1) : ::unsetenv("ANGLE_FAULT");
  skip ? ::setenv("ANGLE_TEST_SKIP_RESTORE", skip, 1) : ::unsetenv("ANGLE_TEST_SKIP_RESTORE");
  salt ? ::setenv("ANGLE_TEST_DROPOUT_SALT", salt, 1) : ::unsetenv("ANGLE_TEST_DROPOUT_SALT");
  return TestHooks::from_environment();
}

bool fires(const TestHooks& hooks, int rank, TestHooks::Point point, long step = 0) {
  return !testing::error_of([&] { hooks.fail_at(rank, point, step); }).empty();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(test_hooks)

BOOST_AUTO_TEST_CASE(a_fault_fires_on_its_rank_point_and_step_only) {
  const TestHooks none = hooks_with(nullptr, nullptr);
  BOOST_TEST(!fires(none, 0, TestHooks::Point::kStartup));
  BOOST_TEST((none.skip_restore == TestHooks::SkipRestore::kNone));
  BOOST_TEST(none.dropout_salt == 0u);
  const TestHooks step = hooks_with("1:step:12", "cursor");
  BOOST_TEST(fires(step, 1, TestHooks::Point::kStep, 12));
  BOOST_TEST(!fires(step, 1, TestHooks::Point::kStep, 11));
  BOOST_TEST(!fires(step, 0, TestHooks::Point::kStep, 12));
  BOOST_TEST(!fires(step, 1, TestHooks::Point::kSave));
  BOOST_TEST((step.skip_restore == TestHooks::SkipRestore::kCursor));
  const TestHooks save = hooks_with("0:save", nullptr, "7");
  BOOST_TEST(fires(save, 0, TestHooks::Point::kSave));
  BOOST_TEST(save.dropout_salt == 7u);
  const std::string message = testing::error_of([&] { save.fail_at(0, TestHooks::Point::kSave); });
  BOOST_TEST(message.find("injected fault at save") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_values_name_the_variable) {
  for (const char* bad : {"1", "x:startup", "1:step:", "1:step:x", "1:sometime"})
    BOOST_TEST(testing::error_of([&] { hooks_with(bad, nullptr); }).find("ANGLE_FAULT '") != std::string::npos, bad);
  BOOST_TEST(testing::error_of([] { hooks_with(nullptr, "rng"); }).find("ANGLE_TEST_SKIP_RESTORE 'rng'") !=
             std::string::npos);
  for (const char* bad : {"", "0", "-3", "x"})
    BOOST_TEST(testing::error_of([&] { hooks_with(nullptr, nullptr, bad); }).find("ANGLE_TEST_DROPOUT_SALT '") !=
               std::string::npos, bad);
}

BOOST_AUTO_TEST_SUITE_END()
