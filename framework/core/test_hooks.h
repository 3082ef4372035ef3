// Fault injection and negative controls for the tests, from environment variables (never job
// keys: a job file cannot turn them on by accident), read once at start-up by cli/ and handed
// down; the training loop only compares integers. Documented in README.md ("Tests").
//   ANGLE_FAULT=RANK:POINT            rank RANK raises an error at POINT: `startup` (after the
//                                     communicator is up), `step:N` (in step N, between forward
//                                     and backward) or `save` (mid-checkpoint, after its shard is
//                                     written, before the checksums are exchanged)
//   ANGLE_TEST_SKIP_RESTORE=cursor    resume without restoring the data cursor, and
//   ANGLE_TEST_DROPOUT_SALT=N         (N > 0) change every dropout key: each proves that the
//                                     exact-resume test can fail
#pragma once
#include <cstdint>
#include <string>

namespace angle {

struct TestHooks {
  enum class Point { kNone, kStartup, kStep, kSave };
  enum class SkipRestore { kNone, kCursor };

  int fault_rank = -1;
  Point fault_point = Point::kNone;
  long fault_step = 0;  // for Point::kStep
  SkipRestore skip_restore = SkipRestore::kNone;
  uint64_t dropout_salt = 0;

  // Reads the variables above; a malformed value is an error naming the variable.
  static TestHooks from_environment();

  // Raises an angle::Error when the hooks name this rank and point (and step).
  void fail_at(int rank, Point point, long step = 0) const {
    if (rank == fault_rank && point == fault_point && (point != Point::kStep || step == fault_step)) fail();
  }

 private:
  [[noreturn]] void fail() const;
};

}  // namespace angle
