#include "core/json_file.h"

#include <fstream>

#include "core/error.h"

namespace angle {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  ANGLE_CHECK(in.good(), path, ": cannot open for reading");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    ANGLE_FAIL(path, ": invalid JSON at byte ", e.byte);
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range 406: a number beyond double
    ANGLE_FAIL(path, ": invalid JSON (", e.what(), ")");
  }
}

void throw_missing_field(const std::string& path, const std::string& key) {
  ANGLE_FAIL(path, ": missing field '", key, "'");
}

void throw_wrong_type(const std::string& path, const std::string& key, const std::string& value) {
  ANGLE_FAIL(path, ": field '", key, "' has the wrong type (value ", value.substr(0, 60), ")");
}

}  // namespace angle
