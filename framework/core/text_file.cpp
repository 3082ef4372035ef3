#include "core/text_file.h"

#include <unicode/utf8.h>

#include <fstream>

#include "core/error.h"

namespace angle {

size_t find_invalid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  int32_t length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    int32_t start = i;
    UChar32 c;
    U8_NEXT(s, i, length, c);
    if (c < 0) return static_cast<size_t>(start);
  }
  return std::string::npos;
}

std::vector<std::string> read_utf8_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ANGLE_CHECK(in.good(), path, ": cannot open for reading");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t bad = find_invalid_utf8(line);
    ANGLE_CHECK(bad == std::string::npos, path, ":", lines.size() + 1, ": not valid UTF-8 (byte ",
                bad + 1, " of the line)");
    lines.push_back(std::move(line));
  }
  ANGLE_CHECK(!lines.empty(), path, ": file is empty");
  return lines;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t end = line.find(sep, start);
    fields.push_back(line.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return fields;
}

}  // namespace angle
