#include "core/log.h"

#include <time.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace angle {

std::string mib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void log_info(const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); }

Progress::Progress(std::string label, long long total, double min_interval_s)
    : label_(std::move(label)), total_(total), min_interval_s_(min_interval_s),
      start_s_(now_seconds()), tty_(isatty(STDERR_FILENO) != 0) {}

void Progress::update(long long done, bool final, const std::string& detail) {
  double now = now_seconds();
  if (!final && now - last_print_s_ < min_interval_s_) return;
  last_print_s_ = now;
  double elapsed = now - start_s_;
  double rate = elapsed > 0 ? done / elapsed : 0.0;
  double eta = rate > 0 ? (total_ - done) / rate : 0.0;
  std::fprintf(stderr, "%s%s %lld/%lld (%.1f/s, %.1fs elapsed, ETA %.1fs)%s%s%s", tty_ ? "\r" : "",
               label_.c_str(), done, total_, rate, elapsed, eta, detail.empty() ? "" : " ", detail.c_str(),
               (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace angle
