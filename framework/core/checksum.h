#pragma once
#include <string>

namespace angle {
// SHA-256 of a file as lower-case hex (OpenSSL EVP), as `sha256sum` prints it.
std::string sha256_file(const std::string& path);
}  // namespace angle
