#include "train/run_record.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"

namespace angle::train {
namespace fs = std::filesystem;

void record_failure(const std::string& output_dir, int rank, const std::string& message) noexcept {
  try {
    if (output_dir.empty() || !fs::is_directory(output_dir)) return;
    AtomicOutput output((fs::path(output_dir) / kFailedFile).string());
    std::ofstream(output.temp_path()) << nlohmann::json{{"rank", rank}, {"error", message}}.dump() << "\n";
    output.commit();
  } catch (...) {
  }
}

}  // namespace angle::train
