// One fuzz target per reader of untrusted bytes, defined with ANGLE_FUZZ_TARGET(name) { ... } and
// registered by name. A libFuzzer binary (-DANGLE_LIBFUZZER -DANGLE_FUZZ_ONLY=name, clang,
// tests/fuzz/run.sh) runs one of them; the replay program (tests/fuzz/replay_main.cpp) runs any of
// them over the seed corpora and the regression inputs in the normal test suite.
//
// The contract under test: malformed input raises angle::Error (a one-line message naming the
// file); anything else that escapes (another exception, a crash, a sanitizer report, an
// allocation above libFuzzer's -rss_limit_mb) is a bug.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/error.h"

namespace angle::fuzz {

using Target = void (*)(std::string_view input);
std::map<std::string, Target>& registry();
struct Registration {
  Registration(const char* name, Target target) { registry()[name] = target; }
};

// A scratch directory of this process (under /dev/shm when it exists), emptied on first use.
const std::filesystem::path& scratch();
// Writes `bytes` to scratch()/name and returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);

// An invariant of a successful parse: its violation is a bug (abort, which libFuzzer reports).
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

// Runs `body`; angle::Error is the expected outcome for malformed input.
template <typename Body>
void expect_angle_errors(Body body) {
  try {
    body();
  } catch (const Error&) {
  }
}

}  // namespace angle::fuzz

#define ANGLE_FUZZ_TARGET(name)                                                   \
  static void fuzz_##name(std::string_view input);                                \
  static const angle::fuzz::Registration registration_##name(#name, fuzz_##name); \
  static void fuzz_##name(std::string_view input)
