#include "core/test_hooks.h"

#include <cstdlib>

#include "core/error.h"

namespace angle {
namespace {

// "RANK:POINT" with POINT startup, step:N or save.
void parse_fault(const std::string& text, TestHooks& hooks) {
  const auto colon = text.find(':');
  const std::string rank = colon == std::string::npos ? "" : text.substr(0, colon);
  const std::string point = colon == std::string::npos ? "" : text.substr(colon + 1);
  const bool rank_ok = !rank.empty() && rank.find_first_not_of("0123456789") == std::string::npos;
  const std::string step = point.rfind("step:", 0) == 0 ? point.substr(5) : "";
  const bool step_ok = !step.empty() && step.find_first_not_of("0123456789") == std::string::npos;
  ANGLE_CHECK(rank_ok && (point == "startup" || point == "save" || step_ok), "ANGLE_FAULT '", text,
              "': expected RANK:POINT with POINT startup, step:N or save (tests only)");
  hooks.fault_rank = std::stoi(rank);
  if (step_ok) hooks.fault_point = TestHooks::Point::kStep, hooks.fault_step = std::stol(step);
  else hooks.fault_point = point == "startup" ? TestHooks::Point::kStartup : TestHooks::Point::kSave;
}

}  // namespace

TestHooks TestHooks::from_environment() {
  TestHooks hooks;
  if (const char* fault = std::getenv("ANGLE_FAULT")) parse_fault(fault, hooks);
  const char* value = std::getenv("ANGLE_TEST_SKIP_RESTORE");
  const std::string skip = value ? value : "";
  ANGLE_CHECK(skip.empty() || skip == "cursor", "ANGLE_TEST_SKIP_RESTORE '", skip, "': must be cursor (tests only)");
  hooks.skip_restore = skip == "cursor" ? SkipRestore::kCursor : SkipRestore::kNone;
  if (const char* salt = std::getenv("ANGLE_TEST_DROPOUT_SALT")) {
    const std::string text = salt;
    ANGLE_CHECK(!text.empty() && text.size() < 19 && text.find_first_not_of("0123456789") == std::string::npos &&
                    std::stoull(text) > 0, "ANGLE_TEST_DROPOUT_SALT '", text, "': must be a positive integer (tests only)");
    hooks.dropout_salt = std::stoull(text);
  }
  return hooks;
}

void TestHooks::fail() const {
  const std::string point = fault_point == Point::kStartup ? "startup"
                            : fault_point == Point::kSave  ? "save"
                                                           : "step:" + std::to_string(fault_step);
  ANGLE_FAIL("injected fault at ", point, " (ANGLE_FAULT, tests only)");
}

}  // namespace angle
