// What a run's output directory says about the run, for `angle sweep` and `angle report`:
// metrics.jsonl (one line per logged step), eval.json at the end (scores, seed, wall time,
// pairs/s, version), then FINISHED, the marker that the run has finished (written atomically,
// after final/ and eval.json); failed.json when it failed (the rank and its message).
// Run directories of builds before the marker have eval.json without "format": there eval.json,
// written last, was the marker.
#pragma once
#include <string>

namespace angle::train {

inline constexpr const char* kMetricsFile = "metrics.jsonl";
inline constexpr const char* kEvalFile = "eval.json";
inline constexpr const char* kFailedFile = "failed.json";
inline constexpr const char* kFinishedFile = "FINISHED";
inline constexpr int kEvalFormat = 2;  // eval.json's "format": 2 = followed by FINISHED

// Whether the run in `dir` has finished: FINISHED, or an eval.json of a build before the marker.
bool run_finished(const std::string& dir);

// Writes failed.json into output_dir when that directory exists. Best effort, never throws: the
// error being reported is what matters.
void record_failure(const std::string& output_dir, int rank, const std::string& message) noexcept;

}  // namespace angle::train
