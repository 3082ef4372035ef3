// JSON files from model directories, parsed with nlohmann-json; errors name the file and key.
#pragma once
#include <nlohmann/json.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace angle {

nlohmann::json read_json_file(const std::string& path);
[[noreturn]] void throw_missing_field(const std::string& path, const std::string& key);
[[noreturn]] void throw_wrong_type(const std::string& path, const std::string& key, const std::string& value);

// An integer that T holds exactly (nlohmann would convert 1e30, 2.5 or -1 silently, some of it UB).
template <typename T>
bool fits_integer(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (!value.is_number_integer()) return false;
  const int64_t v = value.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>) return v >= 0;
  else return v >= static_cast<int64_t>(std::numeric_limits<T>::min()) && v <= static_cast<int64_t>(std::numeric_limits<T>::max());
}

// Typed field access that names file and key on a missing field or a wrong type.
template <typename T>
T json_field(const nlohmann::json& object, const std::string& key, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) throw_missing_field(path, key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!fits_integer<T>(*it)) throw_wrong_type(path, key, it->dump());
  }
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
