// The training loop of `angle train`, run by every rank (sharded by shard/fsdp.h): AdamW with
// decoupled weight decay, linear warm-up and decay, clipping by global norm, gradient
// accumulation, dev evaluation with the best model kept, per-step metrics in metrics.jsonl and a
// progress line with ETA. An error on any rank aborts every rank at once.
#pragma once
#include "core/test_hooks.h"
#include "train/job_config.h"

namespace angle::train {

// Writes into c.output_dir: job.ini (resolved), metrics.jsonl, best/ and final/ (model
// directories that `angle eval`, `angle export` and sentence-transformers read), eval.json and
// FINISHED at the end, and the sharded checkpoints step-<N>/ with `latest` (ckpt/checkpoint.h);
// failed.json on an error (train/run_record.h). `hooks`: the tests' fault injection (cli/ reads
// them from the environment).
// Returns the process exit status: 0, or 128 + signal after SIGTERM/SIGUSR1 (checkpoint written).
int run_training(const JobConfig& c, const TestHooks& hooks);

}  // namespace angle::train
