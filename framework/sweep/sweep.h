// A sweep: one job trained over a grid of overrides x K seeds. Its directory holds manifest.json
// (one row per run: index, overrides, seed, output directory) and one output directory per run;
// the manifest is what `angle sweep` runs (here or as a Slurm array, each task reading its row by
// SLURM_ARRAY_TASK_ID) and what `angle report` reads.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace angle::sweep {

using Overrides = std::vector<std::pair<std::string, std::string>>;  // ("optim.lr", "2e-5"), ...

struct GridAxis {
  std::string key;  // section.key of the job
  std::vector<std::string> values;
};

struct SweepRun {
  int index = 0;
  Overrides overrides;  // this run's grid values, in grid order
  uint64_t seed = 0;
  std::string output_dir;  // relative to the sweep directory
};

struct Sweep {
  std::string job_file;  // absolute
  std::vector<GridAxis> grid;
  Overrides fixed;  // the same for every run (--set, and run.checkpoint_every)
  int seeds = 1;
  std::vector<SweepRun> runs;
};

inline constexpr const char* kManifestFile = "manifest.json";

// "section.key=v1,v2,...": a one-line error names the malformed part.
GridAxis parse_grid(const std::string& spec);
// "section.key=value".
std::pair<std::string, std::string> parse_setting(const std::string& spec);
// The cartesian product of the grid (first axis outermost) x seeds train.seed, +1, ..., +K-1 (the
// job's seed after `fixed`). Every run's configuration is parsed as `angle train` would, so an
// unknown key or a bad value fails here, before any run starts.
Sweep make_sweep(const std::string& job_file, std::vector<GridAxis> grid, Overrides fixed, int seeds);

void write_manifest(const Sweep& sweep, const std::string& dir);
Sweep read_manifest(const std::string& dir);
bool same_sweep(const Sweep& a, const Sweep& b);

// The arguments of `angle train` for one run: --job J, the fixed and grid overrides, its seed, its
// output directory (under `dir`) and --run.resume auto, so that a rerun continues it.
std::vector<std::string> train_arguments(const Sweep& sweep, const SweepRun& run, const std::string& dir);

}  // namespace angle::sweep
