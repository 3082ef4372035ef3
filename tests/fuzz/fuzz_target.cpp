#include "fuzz_target.h"

#include <unistd.h>

#include <fstream>

namespace angle::fuzz {
namespace fs = std::filesystem;

std::map<std::string, Target>& registry() {
  static std::map<std::string, Target> targets;
  return targets;
}

const fs::path& scratch() {
  static const fs::path dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("angle-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const fs::path path = scratch() / name;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

}  // namespace angle::fuzz

#ifdef ANGLE_LIBFUZZER
#define ANGLE_STRINGIFY2(x) #x
#define ANGLE_STRINGIFY(x) ANGLE_STRINGIFY2(x)
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const angle::fuzz::Target target = angle::fuzz::registry().at(ANGLE_STRINGIFY(ANGLE_FUZZ_ONLY));
  target(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
#endif
