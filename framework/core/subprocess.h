// Child processes for the commands that drive others (angle sweep -> angle train, sbatch;
// angle report -> gnuplot): fork + execvp, no shell, so arguments need no quoting.
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace angle {

struct SpawnOptions {
  std::string log_path;  // stdout and stderr appended here ("": inherited)
  std::vector<std::pair<std::string, std::string>> env;  // set in the child
  bool ignore_sigint = false;  // the parent handles Ctrl-C (and stops the child its own way)
};

// Starts argv[0] (searched in PATH); returns its pid. A program that cannot be started exits 127
// after one line on its stderr.
pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// Runs argv to its end with stdout captured (stderr inherited); returns the waitpid status.
int run_captured(const std::vector<std::string>& argv, std::string& out);

bool exited_zero(int status);
// "exit 3" or "killed by signal 9".
std::string exit_text(int status);

}  // namespace angle
