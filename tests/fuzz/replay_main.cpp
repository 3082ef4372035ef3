// Replays inputs through the fuzz targets without libFuzzer: the test suite's check that the seed
// corpora and every input that once crashed a target (tests/fuzz/regressions/) are handled.
//   angle_fuzz_replay TARGET FILE...     exit 0 when every input ends normally or in angle::Error
//   angle_fuzz_replay --list             the targets
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "fuzz_target.h"

int main(int argc, char** argv) {
  using angle::fuzz::registry;
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, _] : registry()) std::cout << name << "\n";
    return 0;
  }
  if (argc < 2 || !registry().count(argv[1])) {
    std::cerr << "usage: angle_fuzz_replay TARGET FILE... | --list\n";
    return 2;
  }
  const auto target = registry().at(argv[1]);
  int replayed = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::cerr << argv[i] << ": cannot open\n";
      return 1;
    }
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string input = bytes.str();
    try {
      target(input);
    } catch (const std::exception& e) {  // anything but angle::Error (the targets catch that)
      std::cerr << argv[1] << ": " << argv[i] << ": escaped: " << e.what() << "\n";
      return 1;
    }
    ++replayed;
  }
  std::cout << argv[1] << ": " << replayed << " inputs handled\n";
  std::filesystem::remove_all(angle::fuzz::scratch());
  return 0;
}
