#include "train/trainer.h"

#include <cstdio>

#include "comm/placement.h"
#include "core/error.h"
#include "train/determinism.h"
#include "train/run_record.h"
#include "train/training_run.h"

namespace angle::train {
namespace {

// The run itself, on every rank alike.
int train(const JobConfig& c, const TestHooks& hooks, comm::Comm& comm) {
  TrainingRun run(c, hooks, comm);  // ranks, data, model, sharding, resume, output directory
  for (long step = run.first_step(); step <= run.last_step(); ++step) {
    const StepOutcome outcome = run.step(step);  // data -> forward/backward -> sharded update
    run.log(step, outcome);
    if (run.stop_requested()) return run.stop_after(step);  // a checkpoint, then exit
    if (run.eval_due(step)) run.evaluate(step);             // best/ when the dev score improved
    if (run.checkpoint_due(step)) run.checkpoint(step);
  }
  return run.finish();  // final/, test scores, eval.json, FINISHED
}

}  // namespace

int run_training(const JobConfig& c, const TestHooks& hooks) {
  set_deterministic(c.deterministic);  // before any CUDA work (NCCL's set-up included)
  comm::PlacementRequest placement;
  placement.backend = to_string(c.backend);
  placement.cuda = c.device.is_cuda();
  placement.gpu = c.device.index;
  placement.host_staging = c.host_staging;
  std::unique_ptr<comm::Comm> comm = comm::make_comm(placement);  // the backend and the rank's device
  comm->set_timeout(c.comm_timeout);
  try {
    return train(c, hooks, *comm);
  } catch (const std::exception& e) {
    // One rank's error is everyone's: its message, then every rank ends at once (the others
    // would otherwise wait in their next collective until the watchdog gives up).
    record_failure(c.output_dir, comm->rank(), message_of(e));
    if (comm->size() == 1) throw;
    std::fprintf(stderr, "angle train: error: rank %d: %s\n", comm->rank(), message_of(e).c_str());
    std::fflush(stderr);
    comm->abort_job(1);
  }
}

}  // namespace angle::train
