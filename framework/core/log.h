// Progress and diagnostics go to stderr so that stdout stays machine-readable (--json, tables).
#pragma once
#include <cstdint>
#include <string>

namespace angle {

void log_info(const std::string& message);
// A progress line that rewrites itself on a terminal and prints plainly when stderr is a file
// (Slurm logs), at most every `min_interval_s` seconds unless `final` is set.
class Progress {
 public:
  Progress(std::string label, long long total, double min_interval_s = 2.0);
  // `detail` (e.g. the loss) is printed beside the counts and the ETA.
  void update(long long done, bool final = false, const std::string& detail = "");

 private:
  std::string label_;
  long long total_;
  double min_interval_s_;
  double start_s_;
  double last_print_s_ = -1e9;
  bool tty_;
};

double now_seconds();
// "12.3 MiB": bytes for people, in messages and tables.
std::string mib(int64_t bytes);
// CPU seconds of the whole process (every thread) so far.
double process_cpu_seconds();

}  // namespace angle
