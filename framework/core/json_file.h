// JSON files from model directories, parsed with nlohmann-json; errors name the file and key.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace angle {

nlohmann::json read_json_file(const std::string& path);
[[noreturn]] void throw_missing_field(const std::string& path, const std::string& key);
[[noreturn]] void throw_wrong_type(const std::string& path, const std::string& key, const std::string& value);

// Typed field access that names file and key on a missing field or a wrong type.
template <typename T>
T json_field(const nlohmann::json& object, const std::string& key, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) throw_missing_field(path, key);
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception&) {
    throw_wrong_type(path, key, it->dump());
  }
}
template <typename T>
T json_field_or(const nlohmann::json& object, const std::string& key, T fallback, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  return json_field<T>(object, key, path);
}

}  // namespace angle
