// What a run's output directory says about the run, for `angle sweep` and `angle report`:
// metrics.jsonl (one line per logged step), eval.json once it has finished (scores, seed, wall
// time, pairs/s, version), failed.json when it failed (the rank and its message).
#pragma once
#include <string>

namespace angle::train {

inline constexpr const char* kMetricsFile = "metrics.jsonl";
inline constexpr const char* kEvalFile = "eval.json";
inline constexpr const char* kFailedFile = "failed.json";

// Writes failed.json into output_dir when that directory exists. Best effort, never throws: the
// error being reported is what matters.
void record_failure(const std::string& output_dir, int rank, const std::string& message) noexcept;

}  // namespace angle::train
