// `angle`: git-style dispatch to one subcommand; every user error becomes one line on stderr
// and exit status 1.
#include <hdf5.h>

#include <cstring>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/version.h"

namespace angle::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"prepare", "tokenize a raw dataset into HDF5 for training", run_prepare},
      {"train", "fine-tune with the AnglE objective from a job file", run_train},
      {"plan", "memory and communication of a job on N ranks, before running it", run_plan},
      {"sweep", "train a job over a grid of keys x seeds, here or as a Slurm job array", run_sweep},
      {"report", "one table (and CSV, JSON, plots) of runs and sweeps", run_report},
      {"mine", "hard negatives for (query, positive) pairs across ranks, as format C training data", run_mine},
      {"embed", "embed one text per line into .npy or .h5", run_embed},
      {"eval", "Spearman of cosine similarity on STS-B / SICK", run_eval},
      {"export", "write a checkpoint as a sentence-transformers model", run_export},
      {"tokenize", "token ids of one text per line, as JSON lines", run_tokenize},
  };
  return list;
}

void print_usage(std::ostream& out) {
  out << "usage: angle <command> [options]   (angle <command> --help for its options)\n\ncommands:\n";
  for (const Command& c : commands()) out << "  " << c.name << std::string(12 - std::strlen(c.name), ' ') << c.summary << "\n";
}

}  // namespace angle::cli

int main(int argc, char** argv) {
  using namespace angle::cli;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report HDF5 failures ourselves, in one line
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "angle " << angle::version() << " (" << angle::revision() << ")\n";
    return 0;
  }
  std::string name = argv[1];
  for (const Command& command : commands()) {
    if (name != command.name) continue;
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
      return command.run(args);
    } catch (const angle::Error& e) {
      std::cerr << "angle " << name << ": error: " << e.what() << "\n";
      if (std::getenv("ANGLE_DEBUG")) std::cerr << "  (raised at " << e.where() << ")\n";
    } catch (const std::exception& e) {
      std::cerr << "angle " << name << ": error: " << angle::message_of(e) << "\n";
    }
    return 1;
  }
  std::cerr << "angle: unknown command '" << name << "'\n";
  print_usage(std::cerr);
  return 2;
}
