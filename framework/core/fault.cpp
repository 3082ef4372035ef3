#include "core/fault.h"

#include <cstdlib>

#include "core/error.h"

namespace angle::fault {

void maybe_fail(int rank, const std::string& point) {
  const char* spec = std::getenv("ANGLE_FAULT");
  if (!spec) return;
  const std::string text(spec);
  const auto colon = text.find(':');
  ANGLE_CHECK(colon != std::string::npos, "ANGLE_FAULT '", text, "': expected RANK:POINT (tests only)");
  if (text.substr(0, colon) == std::to_string(rank) && text.substr(colon + 1) == point)
    ANGLE_FAIL("injected fault at ", point, " (ANGLE_FAULT, tests only)");
}

std::string skip_restore() {
  const char* value = std::getenv("ANGLE_TEST_SKIP_RESTORE");
  const std::string skip = value ? value : "";
  ANGLE_CHECK(skip.empty() || skip == "rng" || skip == "cursor", "ANGLE_TEST_SKIP_RESTORE '", skip,
              "': must be rng or cursor (tests only)");
  return skip;
}

}  // namespace angle::fault
