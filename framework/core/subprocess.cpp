#include "core/subprocess.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace angle {
namespace {

[[noreturn]] void exec_or_exit(const std::vector<std::string>& argv) {
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  ::execvp(c_argv[0], c_argv.data());
  std::fprintf(stderr, "cannot run %s: %s\n", c_argv[0], std::strerror(errno));
  ::_exit(127);
}

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  ANGLE_CHECK(!argv.empty(), "spawn: no program");
  int fd = -1;
  if (!options.log_path.empty()) {
    fd = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ANGLE_CHECK(fd >= 0, options.log_path, ": cannot open for writing: ", std::strerror(errno));
  }
  const pid_t pid = ::fork();
  ANGLE_CHECK(pid >= 0, "fork: ", std::strerror(errno));
  if (pid == 0) {
    if (fd >= 0) ::dup2(fd, STDOUT_FILENO), ::dup2(fd, STDERR_FILENO);
    for (const auto& [key, value] : options.env) ::setenv(key.c_str(), value.c_str(), 1);
    if (options.ignore_sigint) std::signal(SIGINT, SIG_IGN);
    exec_or_exit(argv);
  }
  if (fd >= 0) ::close(fd);
  return pid;
}

int run_captured(const std::vector<std::string>& argv, std::string& out) {
  ANGLE_CHECK(!argv.empty(), "run: no program");
  int pipe_fds[2];
  ANGLE_CHECK(::pipe(pipe_fds) == 0, "pipe: ", std::strerror(errno));
  const pid_t pid = ::fork();
  ANGLE_CHECK(pid >= 0, "fork: ", std::strerror(errno));
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    exec_or_exit(argv);
  }
  ::close(pipe_fds[1]);
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool exited_zero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  return "killed by signal " + std::to_string(WTERMSIG(status));
}

}  // namespace angle
