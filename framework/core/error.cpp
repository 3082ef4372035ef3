#include "core/error.h"

namespace angle::detail {

void throw_error(const char* file, int line, const std::string& message) {
  std::string path(file);
  // Report paths relative to the source tree, the way llm.c's checks do.
  if (auto pos = path.find("framework/"); pos != std::string::npos) path = path.substr(pos);
  throw Error(message, path + ":" + std::to_string(line));
}

}  // namespace angle::detail
