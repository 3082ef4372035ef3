#include "sweep/local_runner.h"

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "core/subprocess.h"
#include "sweep/run_state.h"
#include "train/run_record.h"

namespace angle::sweep {
namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int signal) { g_stop = signal; }

std::string describe(const SweepRun& run) {
  std::string text;
  for (const auto& [key, value] : run.overrides) text += key + "=" + value + " ";
  return text + "seed " + std::to_string(run.seed);
}

}  // namespace

LocalResult run_local(const Sweep& sweep, const std::string& dir, const LocalOptions& options) {
  LocalResult result;
  std::vector<const SweepRun*> todo;
  for (const auto& run : sweep.runs) {
    if (run_status((fs::path(dir) / run.output_dir).string()).state == RunState::finished) ++result.skipped;
    else todo.push_back(&run);
  }
  log_info("sweep: " + std::to_string(sweep.runs.size()) + " runs, " + std::to_string(result.skipped) +
           " finished already, " + std::to_string(todo.size()) + " to run, " + std::to_string(options.parallel) +
           " at a time with " + std::to_string(options.threads) + " thread(s) each");
  g_stop = 0;
  struct sigaction action {}, old_int{}, old_term{};
  action.sa_handler = on_stop;  // no SA_RESTART: waitpid returns EINTR on a stop signal
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  std::map<pid_t, std::pair<const SweepRun*, double>> running;  // pid -> run, start time
  size_t next = 0;
  bool forwarded = false;
  while ((!g_stop && next < todo.size()) || !running.empty()) {
    while (!g_stop && next < todo.size() && static_cast<int>(running.size()) < options.parallel) {
      const SweepRun& run = *todo[next++];
      const fs::path out = fs::path(dir) / run.output_dir;
      fs::create_directories(out);
      std::vector<std::string> argv{options.angle_binary, "train"};
      for (const auto& a : train_arguments(sweep, run, dir)) argv.push_back(a);
      // Ctrl-C reaches the sweep, which stops the runs with SIGTERM (they checkpoint first).
      const pid_t pid = spawn(argv, {(out / "train.log").string(), {{"OMP_NUM_THREADS", std::to_string(options.threads)}},
                                     /*ignore_sigint=*/true});
      running[pid] = {&run, now_seconds()};
      log_info("sweep: run " + std::to_string(run.index) + " (" + describe(run) + ") started, log " +
               (out / "train.log").string());
    }
    if (g_stop && !forwarded) {
      for (const auto& [pid, _] : running) ::kill(pid, SIGTERM);  // they checkpoint and stop
      forwarded = true;
      log_info("sweep: signal " + std::to_string(g_stop) + ": stopping " + std::to_string(running.size()) +
               " run(s) with a checkpoint; rerun the same `angle sweep` to continue");
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      ANGLE_CHECK(errno == EINTR, "waitpid: ", std::strerror(errno));
      continue;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const auto [run, start] = it->second;
    running.erase(it);
    const std::string out = (fs::path(dir) / run->output_dir).string();
    const RunStatus state = run_status(out);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f s", now_seconds() - start);
    if (state.state == RunState::finished) {
      ++result.finished;
      log_info("sweep: run " + std::to_string(run->index) + " finished in " + seconds);
    } else if ((WIFEXITED(status) && (WEXITSTATUS(status) == 128 + SIGTERM || WEXITSTATUS(status) == 128 + SIGUSR1)) ||
               (forwarded && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)) {  // (the latter: still starting up)
      log_info("sweep: run " + std::to_string(run->index) + " stopped with a checkpoint after " + seconds);
    } else {
      ++result.failed;
      // killed or crashed without a message of its own: say so where `angle report` looks
      if (state.state != RunState::failed) train::record_failure(out, 0, exit_text(status) + " (see train.log)");
      log_info("sweep: run " + std::to_string(run->index) + " failed (" + exit_text(status) + ") after " + seconds +
               (state.error.empty() ? "" : ": " + state.error) + "; log " + out + "/train.log");
    }
  }
  result.stopped_by = g_stop;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace angle::sweep
