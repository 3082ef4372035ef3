// Reading line-oriented text inputs with the checks every reader needs: the file exists, is
// not empty, and every line is valid UTF-8 (errors name file:line and the byte offset).
#pragma once
#include <string>
#include <vector>

namespace angle {

// Lines without their terminator ('\n' or '\r\n'). A final line without '\n' counts.
std::vector<std::string> read_utf8_lines(const std::string& path);
// Byte offset of the first ill-formed UTF-8 sequence, or npos.
size_t find_invalid_utf8(const std::string& text);
// Split on a single-character separator, keeping empty fields (the STS files are TSV without quoting).
std::vector<std::string> split(const std::string& line, char sep);

}  // namespace angle
