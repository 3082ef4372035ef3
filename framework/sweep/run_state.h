// What a run's output directory says about it (train/run_record.h: FINISHED when finished,
// failed.json when failed): the state `angle sweep` skips or reruns by, `angle report` shows.
#pragma once
#include <string>

namespace angle::sweep {

enum class RunState {
  pending,     // nothing trained yet
  unfinished,  // started: metrics or a checkpoint, neither finished nor failed (running, stopped, killed)
  failed,      // failed.json: an error on some rank
  finished,    // FINISHED (or an eval.json of an earlier build)
};

struct RunStatus {
  RunState state = RunState::pending;
  std::string error;  // failed: "rank R: message"
};

RunStatus run_status(const std::string& output_dir);
const char* state_name(RunState state);

}  // namespace angle::sweep
