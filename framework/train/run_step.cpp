// TrainingRun::step: one optimizer step on every rank. Data: this rank's slice of each
// micro-batch (the next step's is read meanwhile); batch: the global duplicate filter and this
// rank's token rows; encode, loss and backward (stages 2/3 reduce each gradient as backward
// produces it); then reduce (stage 1), clip and update the shards.
#include "train/training_run.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"
#include "core/memory.h"
#include "train/schedule.h"
#include "train/step_batch.h"

namespace angle::train {

StepOutcome TrainingRun::step(long step) {
  StepOutcome out;
  out.lr = c_.lr * linear_schedule(step - 1, c_.warmup_steps, total_steps_);
  const Slices micro_batches = [&] {
    StepProfile::Scope scope(&profile_, Phase::kData);
    return next_batch_.get();
  }();
  if (step < total_steps_)
    next_batch_ = std::async(std::launch::async, [this, step] {
      return data_->rank_slices(step + 1, rank_, world_, micro_batch_, sampler_shift_);
    });
  for (const auto& examples : micro_batches) {
    const StepBatch batch = [&] {
      StepProfile::Scope scope(&profile_, Phase::kBatch);
      return assemble_batch(examples, rows_per_example_, c_.filter_duplicate, comm_);
    }();
    out.dropped += batch.dropped;
    ANGLE_CHECK(batch.global_kept() > 0, "step ", step, ": every example of the batch is a duplicate of another; "
                "set data.filter_duplicate = false or deduplicate the data");
    const auto [tokens, flops] = shape_.train_cost(batch.rows);
    window_.tokens += tokens, window_.flops += flops, window_.examples += static_cast<double>(batch.global_kept());
    totals_.tokens += tokens, totals_.flops += flops;
    out.examples += static_cast<double>(batch.global_kept());
    forward_backward(*encoder_, *sharded_, batch, encode_options_, [&](const at::Tensor& embeddings) {
      MicroBatchLoss value = micro_batch_loss(embeddings, batch, loss_settings_, comm_);
      hooks_.fail_at(rank_, TestHooks::Point::kStep, step);
      ANGLE_CHECK(std::isfinite(value.value), "step ", step, ": loss is ", value.value,
                  " (not finite); lower optim.lr or check the data");
      out.loss += value.value / c_.grad_accum;
      for (const auto& [k, v] : value.terms) out.terms[k] += v / c_.grad_accum;
      return value.total / static_cast<double>(c_.grad_accum);
    });
  }
  // Reduce (stage 1), clip, update: its wait in collectives is the reduce phase, the rest the optimizer's.
  window_.comm_wait += comm_.take_wait().wall_s;
  const double update_start = now_seconds(), update_cpu_start = process_cpu_seconds();
  const uint64_t update_mark = profile_.device_mark();
  out.grad_norm = sharded_->step(out.lr, c_.max_grad_norm);
  if (profile_.has_device_clock()) profile_.add_device_span(Phase::kOptimizer, update_mark, profile_.device_mark());
  const comm::Comm::WaitTime update_wait = comm_.take_wait();
  profile_.add(Phase::kReduce, update_wait.wall_s, update_wait.cpu_s);
  profile_.add(Phase::kOptimizer, now_seconds() - update_start - update_wait.wall_s,
               process_cpu_seconds() - update_cpu_start - update_wait.cpu_s);
  window_.comm_wait += update_wait.wall_s;
  window_.comm_bytes += comm_.take_bytes();
  window_.comm_calls += comm_.take_calls();
  totals_.peak_state = std::max(totals_.peak_state, sharded_->memory().peak());
  profile_.end_step();
  return out;
}

}  // namespace angle::train
