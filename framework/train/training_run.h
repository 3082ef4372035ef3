// One run of `angle train` on one rank, in the pieces the loop of train/trainer.cpp calls:
// set-up (the constructor: ranks, data, model, sharding, resume, output directory), step() (data
// -> forward/backward -> sharded update), the after-step rules (log, stop, evaluate and keep the
// best, checkpoint) and finish() (the final model, the test scores, eval.json and FINISHED).
// Every rank runs the same calls in the same order: most of them are collective.
#pragma once
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "core/log.h"
#include "core/test_hooks.h"
#include "data/sts_files.h"
#include "model/encoder.h"
#include "model/model_shape.h"
#include "shard/fsdp.h"
#include "train/encode.h"
#include "train/job_config.h"
#include "train/micro_batch_loss.h"
#include "train/run_metrics.h"
#include "train/step_profile.h"
#include "train/training_data.h"

namespace angle::train {

// What one optimizer step produced, for its metrics line and the progress line.
struct StepOutcome {
  double loss = 0, lr = 0, grad_norm = 0;
  std::map<std::string, double> terms;  // the loss terms, averaged over the micro-batches
  long dropped = 0;                     // duplicates dropped from the step's micro-batches
  double examples = 0;                  // examples kept over all ranks
};

class TrainingRun {
 public:
  TrainingRun(const JobConfig& c, const TestHooks& hooks, comm::Comm& comm);
  ~TrainingRun();

  long first_step() const { return start_step_; }
  long last_step() const { return total_steps_; }

  StepOutcome step(long step);
  void log(long step, const StepOutcome& outcome);
  bool stop_requested();  // collective: a stop signal reached any rank
  int stop_after(long step);
  bool eval_due(long step) const;
  void evaluate(long step);  // collective: the dev score, best/ when it improved
  bool checkpoint_due(long step) const;
  void checkpoint(long step);  // collective
  int finish();                // collective

 private:
  using Slices = std::vector<std::vector<data::Example>>;
  void check_startup();
  void load_model();
  void shard_model();
  void resume_from_checkpoint();
  void prepare_output_dir();

  const JobConfig& c_;
  const TestHooks& hooks_;
  comm::Comm& comm_;
  const int rank_, world_;
  std::optional<data::StsPairs> dev_set_;
  TestSets test_sets_;
  std::optional<model::Encoder> encoder_;
  std::unique_ptr<TrainingData> data_;
  std::unique_ptr<shard::ShardedModel> sharded_;
  model::ModelShape shape_;  // for the model FLOPs of each step
  LossSettings loss_settings_;
  StepProfile profile_;
  EncodeOptions encode_options_;
  int64_t rows_per_example_ = 2;
  size_t micro_batch_ = 0;
  long sampler_shift_ = 0;  // only the negative-control test shifts the data order
  long batches_per_epoch_ = 1, start_step_ = 1, total_steps_ = 0, eval_every_ = 1;
  double best_dev_ = -1e9;
  long best_step_ = 0;
  std::ofstream metrics_;      // rank 0
  double elapsed_before_ = 0;  // training seconds of the earlier runs this one resumes
  std::future<Slices> next_batch_;
  std::unique_ptr<Progress> progress_;
  MetricsWindow window_;
  RunTotals totals_;
};

}  // namespace angle::train
