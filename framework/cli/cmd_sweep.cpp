#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "core/error.h"
#include "sweep/local_runner.h"
#include "sweep/run_state.h"
#include "sweep/slurm_array.h"

namespace angle::cli {
namespace fs = std::filesystem;

namespace {

std::string self_binary() { return fs::read_symlink("/proc/self/exe").string(); }

// slurm/train.sbatch of the checkout this `angle` was built in (build/angle -> ../slurm), else
// the one under the working directory.
std::string default_sbatch_script() {
  const fs::path beside = fs::path(self_binary()).parent_path().parent_path() / "slurm/train.sbatch";
  return fs::exists(beside) ? beside.string() : "slurm/train.sbatch";
}

std::vector<std::string> strings(const po::variables_map& vm, const char* key) {
  return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
}

// The sweep of --job/--grid/--seeds/--set, or the one already in DIR (which they must match).
sweep::Sweep resolve(const po::variables_map& vm, const std::string& dir) {
  const bool exists = fs::exists(fs::path(dir) / sweep::kManifestFile);
  if (!vm.count("job")) {
    ANGLE_CHECK(exists, dir, ": no sweep there yet (no ", sweep::kManifestFile, "); --job is needed to start one");
    ANGLE_CHECK(!vm.count("grid") && !vm.count("set"), "--grid and --set need --job");
    return sweep::read_manifest(dir);
  }
  std::vector<sweep::GridAxis> grid;
  for (const auto& spec : strings(vm, "grid")) grid.push_back(sweep::parse_grid(spec));
  sweep::Overrides fixed;
  for (const auto& spec : strings(vm, "set")) fixed.push_back(sweep::parse_setting(spec));
  bool has_checkpointing = false;
  for (const auto& [key, value] : fixed) has_checkpointing |= key == "run.checkpoint_every";
  if (!has_checkpointing) fixed.emplace_back("run.checkpoint_every", std::to_string(vm["checkpoint-every"].as<long>()));
  sweep::Sweep wanted = sweep::make_sweep(vm["job"].as<std::string>(), std::move(grid), std::move(fixed),
                                          vm["seeds"].as<int>());
  if (exists) {
    const sweep::Sweep recorded = sweep::read_manifest(dir);
    ANGLE_CHECK(sweep::same_sweep(recorded, wanted), dir, " holds a different sweep (", sweep::kManifestFile,
                "): rerun it with the same --job/--grid/--seeds/--set, or with --out alone, or use another --out");
    return recorded;
  }
  return wanted;
}

void print_plan(const sweep::Sweep& sweep, const std::string& dir) {
  std::cout << "sweep " << dir << ": " << sweep.runs.size() << " runs of " << sweep.job_file << "\n";
  for (const auto& run : sweep.runs) {
    std::cout << "  " << run.index << "  " << run.output_dir << "  seed " << run.seed;
    for (const auto& [key, value] : run.overrides) std::cout << "  " << key << "=" << value;
    std::cout << "  [" << sweep::state_name(sweep::run_status((fs::path(dir) / run.output_dir).string()).state)
              << "]\n";
  }
}

}  // namespace

int run_sweep(const std::vector<std::string>& args) {
  po::options_description o("sweep");
  o.add_options()
      ("job", po::value<std::string>(), "job file (angle train --job); needed to start a sweep, optional to rerun one")
      ("grid", po::value<std::vector<std::string>>()->composing(),
       "section.key=v1,v2,...: one axis of the grid (repeat for more; the runs are their product)")
      ("seeds", po::value<int>()->default_value(1), "seeds per configuration: train.seed of the job, +1, ...")
      ("set", po::value<std::vector<std::string>>()->composing(), "section.key=value for every run (repeatable)")
      ("out", po::value<std::string>()->required(), "sweep directory: manifest.json and one directory per run")
      ("checkpoint-every", po::value<long>()->default_value(100),
       "run.checkpoint_every of the runs unless --set gives it (a rerun continues from there)")
      ("parallel", po::value<int>()->default_value(1), "local: runs at a time")
      ("threads", po::value<int>(), "local: compute threads per run (default: cores / --parallel)")
      ("slurm", po::bool_switch(), "submit the unfinished runs as one Slurm job array instead of running them here")
      ("array-limit", po::value<int>()->default_value(0), "--slurm: at most K array tasks at once (%K; 0: no limit)")
      ("sbatch-arg", po::value<std::vector<std::string>>()->composing(),
       "--slurm: an sbatch option for every task, e.g. --sbatch-arg=--ntasks=4 (repeatable)")
      ("sbatch-script", po::value<std::string>()->default_value(default_sbatch_script()), "--slurm: the batch script")
      ("dry-run", po::bool_switch(), "write the manifest and show the runs, run nothing")
      ("run-args", po::value<int>(), "print run I's `angle train` arguments, one per line (used by train.sbatch)");
  const auto vm = parse("sweep", "--job J --grid section.key=v1,v2 [--grid ...] [--seeds K] --out DIR [--slurm]", o,
                        args);
  if (!vm) return 0;
  const std::string dir = (*vm)["out"].as<std::string>();
  if (vm->count("run-args")) {
    const sweep::Sweep sweep = sweep::read_manifest(dir);
    const int index = (*vm)["run-args"].as<int>();
    ANGLE_CHECK(index >= 0 && index < static_cast<int>(sweep.runs.size()), "--run-args ", index, ": the sweep in ",
                dir, " has runs 0..", sweep.runs.size() - 1);
    for (const auto& a : sweep::train_arguments(sweep, sweep.runs[static_cast<size_t>(index)], dir)) std::cout << a << "\n";
    return 0;
  }
  const sweep::Sweep sweep = resolve(*vm, dir);
  sweep::write_manifest(sweep, dir);
  for (const auto& run : sweep.runs) fs::create_directories(fs::path(dir) / run.output_dir);
  print_plan(sweep, dir);
  std::cout.flush();  // before the runs' progress on stderr
  if ((*vm)["dry-run"].as<bool>()) return 0;

  if ((*vm)["slurm"].as<bool>()) {
    std::vector<int> unfinished;
    for (const auto& run : sweep.runs)
      if (sweep::run_status((fs::path(dir) / run.output_dir).string()).state != sweep::RunState::finished)
        unfinished.push_back(run.index);
    if (unfinished.empty()) {
      std::cout << "every run has finished: nothing to submit (angle report " << dir << ")\n";
      return 0;
    }
    sweep::SlurmOptions options{self_binary(), (*vm)["sbatch-script"].as<std::string>(),
                                (*vm)["array-limit"].as<int>(), strings(*vm, "sbatch-arg")};
    const std::string job = sweep::submit_array(dir, unfinished, options);
    std::cout << "submitted job array " << job << " (--array=" << sweep::array_spec(unfinished, options.array_limit)
              << "): squeue -j " << job << "; logs " << dir << "/slurm-" << job << "_*.out; then angle report "
              << dir << "\n";
    return 0;
  }

  sweep::LocalOptions options;
  options.angle_binary = self_binary();
  options.parallel = (*vm)["parallel"].as<int>();
  ANGLE_CHECK(options.parallel >= 1, "--parallel must be at least 1");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.threads = vm->count("threads") ? (*vm)["threads"].as<int>() : std::max(1, cores / options.parallel);
  ANGLE_CHECK(options.threads >= 1, "--threads must be at least 1");
  const sweep::LocalResult result = sweep::run_local(sweep, dir, options);
  std::cout << "sweep " << dir << ": " << result.finished << " finished now, " << result.skipped
            << " finished before, " << result.failed << " failed" << (result.stopped_by ? ", stopped by a signal" : "")
            << " (angle report " << dir << ")\n";
  if (result.stopped_by) return 128 + result.stopped_by;
  return result.failed ? 1 : 0;
}

}  // namespace angle::cli
