// One exception type for every failure a user can cause (bad file, bad option, bad model).
// The message is the one line the user sees; it names the file/line/field and the problem.
// `where` records the C++ file:line of the check that fired, for bug reports (--verbose).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace angle {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, std::string where)
      : std::runtime_error(message), where_(std::move(where)) {}
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// The one-line message of any exception (LibTorch's without its C++ backtrace).
std::string message_of(const std::exception& e);

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace angle

#define ANGLE_FAIL(...) ::angle::detail::throw_error(__FILE__, __LINE__, ::angle::detail::concat(__VA_ARGS__))
#define ANGLE_CHECK(cond, ...)  \
  do {                          \
    if (!(cond)) ANGLE_FAIL(__VA_ARGS__); \
  } while (0)
