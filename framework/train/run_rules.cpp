// TrainingRun's after-step rules (log, stop on a signal, evaluate and keep the best model,
// checkpoint) and the end of the run.
#include "train/training_run.h"

#include <ATen/ATen.h>

#include <csignal>
#include <filesystem>

#include "ckpt/checkpoint.h"
#include "core/memory.h"
#include "core/log.h"
#include "core/version.h"
#include "train/device_memory.h"
#include "train/run_record.h"
#include "train/run_signals.h"

namespace angle::train {
namespace fs = std::filesystem;
using nlohmann::json;

// A metrics.jsonl line every train.log_every steps and at the last (rank 0); the progress line.
void TrainingRun::log(long step, const StepOutcome& out) {
  const bool logged = step % c_.log_every == 0 || step == total_steps_;
  // On a GPU: every rank's caching-allocator peaks (allocated, reserved) since the start, one
  // gather on the logged steps.
  json device_peaks;
  if (logged && encoder_->device.is_cuda()) {
    const DeviceMemory mine = device_memory(encoder_->device).value_or(DeviceMemory{});
    const at::Tensor all =
        comm_.all_gather_rows(at::tensor({mine.peak_allocated, mine.peak_reserved}, at::kLong).view({1, 2}).to(comm_.device()))
            .cpu();
    device_peaks = {{"device_peak_allocated_bytes", json::array()}, {"device_peak_reserved_bytes", json::array()}};
    for (int64_t r = 0; r < all.size(0); ++r) {
      device_peaks["device_peak_allocated_bytes"].push_back(all[r][0].item<int64_t>());
      device_peaks["device_peak_reserved_bytes"].push_back(all[r][1].item<int64_t>());
    }
  }
  if (rank_ == 0 && logged) {
    const long epoch = (step - 1) / batches_per_epoch_;
    json line = window_.line(step, epoch, out.loss, out.lr, out.grad_norm, out.dropped, out.terms, sharded_->memory(),
                             elapsed_before_ + now_seconds() - totals_.start, profile_.take_window());
    if (!device_peaks.is_null()) line.update(device_peaks);
    metrics_ << line.dump() << std::endl;
    window_ = MetricsWindow{};
    sharded_->reset_memory_peak();
  }
  totals_.examples += out.examples;
  if (rank_ == 0) {
    char detail[128];
    std::snprintf(detail, sizeof detail, "loss %.4f, lr %.2e, %.1f pairs/s", out.loss, out.lr,
                  totals_.examples / std::max(1e-9, now_seconds() - totals_.start));
    progress_->update(step, step == total_steps_, detail);
  }
}

// A stop signal on any rank stops every rank after this step.
bool TrainingRun::stop_requested() {
  at::Tensor stop = at::full({1}, static_cast<int64_t>(stop_signal()), at::kLong).to(comm_.device());
  if (world_ > 1) comm_.all_reduce_sum(stop);
  return stop.cpu()[0].item<int64_t>() != 0;
}

// After a stop signal: a checkpoint, then the exit status 128 + signal.
int TrainingRun::stop_after(long step) {
  if (next_batch_.valid()) next_batch_.wait();
  checkpoint(step);
  const int signal = stop_signal() ? stop_signal() : SIGTERM;
  if (rank_ == 0) log_info("stopped by signal " + std::to_string(signal) + " after step " + std::to_string(step) +
                           "; checkpoint written; resume with --run.resume auto");
  return 128 + signal;
}

bool TrainingRun::eval_due(long step) const {
  return dev_set_ && (step % eval_every_ == 0 || step == total_steps_);
}

void TrainingRun::evaluate(long step) {
  StepProfile::Scope scope(&profile_, Phase::kEval);
  sharded_->gather_full(/*keep=*/rank_ == 0);
  if (rank_ == 0) {  // the other ranks wait at the barrier (within the watchdog timeout)
    const double dev = evaluate_dev(*encoder_, *dev_set_, step, metrics_);
    if (dev > best_dev_) {
      best_dev_ = dev, best_step_ = step;
      model::save_model_dir(*encoder_->model, encoder_->export_spec, (fs::path(c_.output_dir) / "best").string());
    }
  }
  comm_.barrier();
  sharded_->release_full();
}

// Checkpoints come after the evaluation, so that they know this step's dev score.
bool TrainingRun::checkpoint_due(long step) const {
  return c_.checkpoint_every > 0 && (step % c_.checkpoint_every == 0 || step == total_steps_);
}

void TrainingRun::checkpoint(long step) {
  StepProfile::Scope scope(&profile_, Phase::kCheckpoint);
  const uint64_t cursor = data_->sampler().cursor_after(static_cast<uint64_t>(step - 1));
  ckpt::save(c_.output_dir, {step, cursor, c_.dump(), c_.identity_hash(), best_dev_, best_step_}, *sharded_, comm_,
             c_.keep_last, &hooks_);
}

// The profile, final/, the test scores beside the base model's, eval.json and FINISHED.
int TrainingRun::finish() {
  encoder_->model->train(false);
  profile_.end_run();
  const json step_profile = profile_summary(profile_, shape_, c_, encoder_->device, totals_, rank_);
  totals_.peak_state = std::max(totals_.peak_state, sharded_->memory().peak());
  std::string device_line;
  if (const auto device = device_memory(encoder_->device))
    device_line = ", " + encoder_->device.str() + " peak allocated " + mib(device->peak_allocated) + " MiB, reserved " +
                  mib(device->peak_reserved) + " MiB";
  std::fprintf(stderr, "[rank %d] peak model state %.1f MiB (stage %d), peak RSS %.1f MiB%s\n", rank_,
               static_cast<double>(totals_.peak_state) / (1 << 20), c_.stage.number(),
               static_cast<double>(peak_resident_bytes()) / (1 << 20), device_line.c_str());
  sharded_->end_training();
  sharded_->gather_full(/*keep=*/rank_ == 0);
  if (rank_ == 0) {
    model::save_model_dir(*encoder_->model, encoder_->export_spec, (fs::path(c_.output_dir) / "final").string());
    const double seconds = now_seconds() - totals_.start;
    json result = {{"format", kEvalFormat}, {"job", c_.job_file}, {"steps", total_steps_}, {"ranks", world_},
                   {"seed", c_.seed}, {"version", version()}, {"revision", revision()},
                   {"wall_s", elapsed_before_ + seconds}, {"pairs_per_s", totals_.examples / std::max(1e-9, seconds)},
                   {"profile", step_profile}};
    if (dev_set_) result["best"] = {{"step", best_step_}, {"dev", {{"spearman", best_dev_}}}};
    if (!test_sets_.empty()) add_test_scores(c_, *encoder_, test_sets_, dev_set_.has_value(), result);
    write_run_result(c_.output_dir, result, total_steps_);
    log_info("eval: " + result.dump());
    for (const std::string& line : test_summary(c_, result)) log_info(line);
  }
  comm_.barrier();
  return 0;
}

}  // namespace angle::train
