#include "sweep/run_state.h"

#include <filesystem>

#include "core/json_file.h"
#include "train/run_record.h"

namespace angle::sweep {
namespace fs = std::filesystem;

RunStatus run_status(const std::string& output_dir) {
  const fs::path dir(output_dir);
  if (train::run_finished(output_dir)) return {RunState::finished, ""};
  if (fs::exists(dir / train::kFailedFile)) {
    const std::string path = (dir / train::kFailedFile).string();
    const auto j = read_json_file(path);
    return {RunState::failed, "rank " + std::to_string(json_field<int>(j, "rank", path)) + ": " +
                                  json_field<std::string>(j, "error", path)};
  }
  if (fs::exists(dir / train::kMetricsFile) || fs::exists(dir / "latest")) return {RunState::unfinished, ""};
  return {RunState::pending, ""};
}

const char* state_name(RunState state) {
  switch (state) {
    case RunState::pending: return "pending";
    case RunState::unfinished: return "unfinished";
    case RunState::failed: return "failed";
    case RunState::finished: return "finished";
  }
  return "?";
}

}  // namespace angle::sweep
