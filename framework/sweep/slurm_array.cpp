#include "sweep/slurm_array.h"

#include <filesystem>

#include "core/error.h"
#include "core/subprocess.h"

namespace angle::sweep {
namespace fs = std::filesystem;

std::string array_spec(const std::vector<int>& indices, int limit) {
  std::string spec;
  for (int i : indices) {
    if (!spec.empty()) spec += ',';
    spec += std::to_string(i);
  }
  return limit > 0 ? spec + "%" + std::to_string(limit) : spec;
}

std::string submit_array(const std::string& dir, const std::vector<int>& indices, const SlurmOptions& options) {
  ANGLE_CHECK(!indices.empty(), "no run to submit");
  ANGLE_CHECK(fs::exists(options.script), options.script, ": no such sbatch script (--sbatch-script)");
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  std::vector<std::string> argv{"sbatch", "--parsable", "--array=" + array_spec(indices, options.array_limit),
                                "--job-name=angle-sweep", "--output=" + abs_dir + "/slurm-%A_%a.out",
                                "--export=ALL,ANGLE_BIN=" + options.angle_binary};
  argv.insert(argv.end(), options.sbatch_args.begin(), options.sbatch_args.end());
  argv.insert(argv.end(), {options.script, "--sweep", abs_dir});
  std::string text;
  const int status = run_captured(argv, text);
  ANGLE_CHECK(exited_zero(status), "sbatch failed (", exit_text(status), "; its message is above)");
  const auto end = text.find_first_of(";\n");
  return text.substr(0, end);
}

}  // namespace angle::sweep
