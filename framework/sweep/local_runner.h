// Runs a sweep's runs on this machine: P at a time, each `angle train` with its output going to
// its directory's train.log, skipping finished runs; failed and unfinished ones run (again) and
// continue from their newest checkpoint. SIGINT/SIGTERM stop the sweep: the running runs get
// SIGTERM, checkpoint and stop, and the next `angle sweep` continues them.
#pragma once
#include <string>

#include "sweep/sweep.h"

namespace angle::sweep {

struct LocalOptions {
  std::string angle_binary;  // the `angle` that runs each `angle train`
  int parallel = 1;          // runs at a time
  int threads = 1;           // compute threads of each run (OMP_NUM_THREADS)
};

struct LocalResult {
  int finished = 0, failed = 0, skipped = 0;
  int stopped_by = 0;  // the signal that stopped the sweep, or 0
};

LocalResult run_local(const Sweep& sweep, const std::string& dir, const LocalOptions& options);

}  // namespace angle::sweep
