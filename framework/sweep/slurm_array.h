// Submits a sweep's unfinished runs as one Slurm job array: `sbatch --array=I,J,...[%K]` of
// slurm/train.sbatch --sweep DIR, each task training the manifest row SLURM_ARRAY_TASK_ID,
// preemptible and requeueing like any train.sbatch job.
#pragma once
#include <string>
#include <vector>

#include "sweep/sweep.h"

namespace angle::sweep {

struct SlurmOptions {
  std::string angle_binary;             // exported to the tasks as ANGLE_BIN
  std::string script;                   // slurm/train.sbatch
  int array_limit = 0;                  // at most K tasks at once (0: no limit)
  std::vector<std::string> sbatch_args; // passed to sbatch before the script (e.g. --ntasks=4)
};

// "0,3,5%2": the array indices, and the limit when there is one.
std::string array_spec(const std::vector<int>& indices, int limit);
// Returns the array's job id (sbatch --parsable).
std::string submit_array(const std::string& dir, const std::vector<int>& indices, const SlurmOptions& options);

}  // namespace angle::sweep
