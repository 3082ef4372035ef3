#include "train/run_signals.h"

#include <csignal>

namespace angle::train {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void request_stop(int signal) { g_stop_signal = signal; }

}  // namespace

void install_stop_handlers() {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
}

int stop_signal() { return static_cast<int>(g_stop_signal); }

}  // namespace angle::train
