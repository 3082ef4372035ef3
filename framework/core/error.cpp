#include "core/error.h"

#include <c10/util/Exception.h>

namespace angle {

std::string message_of(const std::exception& e) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) return torch_error->what_without_backtrace();
  return e.what();
}

}  // namespace angle

namespace angle::detail {

void throw_error(const char* file, int line, const std::string& message) {
  std::string path(file);
  // Report paths relative to the source tree, the way llm.c's checks do.
  if (auto pos = path.find("framework/"); pos != std::string::npos) path = path.substr(pos);
  throw Error(message, path + ":" + std::to_string(line));
}

}  // namespace angle::detail
