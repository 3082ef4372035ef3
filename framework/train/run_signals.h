// SIGTERM / SIGUSR1 (Slurm before a time limit or preemption): the run finishes its step,
// checkpoints and exits with 128 + signal (train/training_run.h).
#pragma once

namespace angle::train {

void install_stop_handlers();
// The signal received since install_stop_handlers(), or 0.
int stop_signal();

}  // namespace angle::train
