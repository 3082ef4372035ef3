// `angle report`: what runs and sweeps produced, one row per run (failed and unfinished ones
// included, with their state), and per configuration the mean and standard deviation over seeds.
// Read from the runs' own files only (train/run_record.h, sweep/sweep.h), so it works on a
// directory copied off a cluster, while runs are still going, and on runs of older versions.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sweep/run_state.h"
#include "sweep/sweep.h"

namespace angle::report {

struct Curve {
  std::vector<double> step, value;
};

struct RunRow {
  std::string sweep_dir;  // "" for a run given on its own
  int index = -1;         // row of the sweep's manifest
  std::string output_dir;
  sweep::RunStatus status;
  sweep::Overrides values;  // the swept keys of this run
  std::optional<uint64_t> seed;
  std::optional<double> best_dev, test, pairs_per_s, wall_s;
  std::optional<long> best_step, last_step;
  std::string version;  // "0.1.0 (revision)"
  Curve loss, dev;
};

struct ConfigRow {
  std::string sweep_dir;
  sweep::Overrides values;
  int runs = 0, finished = 0;
  std::optional<double> dev_mean, dev_std, test_mean, test_std;  // over finished runs; std needs 2
};

struct Report {
  std::vector<std::string> keys;  // every swept key, in first-seen order (the table's columns)
  std::vector<RunRow> runs;       // sorted by best dev Spearman, best first; runs without one last
  std::vector<ConfigRow> configs; // sorted by mean dev Spearman
};

// Each path: a sweep directory (manifest.json) or one run's output directory.
Report build_report(const std::vector<std::string>& paths);

std::string format_table(const Report& report);
std::string format_csv(const Report& report);
nlohmann::json to_json(const Report& report);

}  // namespace angle::report
