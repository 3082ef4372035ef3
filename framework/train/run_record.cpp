#include "train/run_record.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"

namespace angle::train {
namespace fs = std::filesystem;

void record_failure(const std::string& output_dir, int rank, const std::string& message) noexcept {
  try {
    if (output_dir.empty() || !fs::is_directory(output_dir)) return;
    write_atomically((fs::path(output_dir) / kFailedFile).string(),
                     nlohmann::json{{"rank", rank}, {"error", message}}.dump() + "\n");
  } catch (...) {
  }
}

}  // namespace angle::train
