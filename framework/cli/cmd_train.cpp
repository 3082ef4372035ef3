#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/test_hooks.h"
#include "train/trainer.h"

namespace angle::cli {

int run_train(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: angle train --job FILE.ini [--section.key value ...]\n\n"
                 "Every key of the job file can be overridden on the command line.\n\n"
              << train::job_help() << "\n";
    return args.empty() ? 2 : 0;
  }
  ANGLE_CHECK(args.size() >= 2 && args[0] == "--job", "expected --job FILE.ini first (see 'angle train --help')");
  auto job = train::parse_job(args[1], std::vector<std::string>(args.begin() + 2, args.end()));
  return train::run_training(*job, TestHooks::from_environment());
}

}  // namespace angle::cli
