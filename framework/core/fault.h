// Fault injection and negative controls for the tests, from environment variables (never job
// keys: a job file cannot turn them on by accident). Documented in README.md ("Tests").
//   ANGLE_FAULT=RANK:POINT            rank RANK raises an error at POINT: `startup` (after the
//                                     communicator is up), `step:N` (in step N, between forward
//                                     and backward) or `save` (mid-checkpoint, after its shard is
//                                     written, before the checksums are exchanged)
//   ANGLE_TEST_SKIP_RESTORE=rng|cursor  resume without restoring the RNG or the data cursor (proves
//                                     that the exact-resume test can fail)
#pragma once
#include <string>

namespace angle::fault {

// Raises an angle::Error when ANGLE_FAULT names this rank and point.
void maybe_fail(int rank, const std::string& point);
// "", "rng" or "cursor" (anything else is an error naming the variable).
std::string skip_restore();

}  // namespace angle::fault
