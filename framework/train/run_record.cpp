#include "train/run_record.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"
#include "core/json_file.h"

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

bool run_finished(const std::string& dir) {
  const fs::path run(dir);
  if (fs::exists(run / kFinishedFile)) return true;
  const fs::path eval = run / kEvalFile;
  if (!fs::exists(eval)) return false;
  // eval.json without "format" comes from a build before FINISHED, which wrote it last.
  try {
    return !read_json_file(eval.string()).contains("format");
  } catch (const std::exception&) {
    return false;  // a cut eval.json: the run did not get to its end
  }
}

}  // namespace angle::train
