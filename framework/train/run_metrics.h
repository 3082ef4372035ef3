// What a run reports: the metrics.jsonl lines (one per logged step, and the dev scores), the
// dev and test evaluations, the run's time profile, and eval.json with the FINISHED marker
// (train/run_record.h names the files).
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

#include "core/log.h"
#include "data/sts_files.h"
#include "model/encoder.h"
#include "model/model_shape.h"
#include "shard/memory_ledger.h"
#include "train/job_config.h"
#include "train/step_profile.h"

namespace angle::train {

// The log phase: what a metrics.jsonl line reports about the steps since the previous one.
struct MetricsWindow {
  double start = now_seconds(), examples = 0, tokens = 0, flops = 0, comm_wait = 0;
  uint64_t comm_bytes = 0, comm_calls = 0;  // what this rank handed to collectives, and how many it called
  nlohmann::json line(long step, long epoch, double loss, double lr, double grad_norm, long dropped,
                      const std::map<std::string, double>& terms, const shard::MemoryLedger& memory, double elapsed,
                      const nlohmann::json& profile) const;
};

// The whole run's counts, for eval.json and the end-of-run profile.
struct RunTotals {
  double start = now_seconds(), examples = 0, tokens = 0, flops = 0;
  int64_t peak_state = 0;
};

// A resumed run rewrites metrics.jsonl with the lines of the steps up to its checkpoint only
// (the interrupted run may have logged later steps, and a kill may have cut the last line), so
// that every step appears once however often the run is resumed. Returns the training time the
// kept lines reach (their last elapsed_s), from which the resumed run counts on.
double keep_metrics_until(const std::string& path, long last_step);

// Rank 0, between gather_full() and release_full(): the dev score, logged and written to metrics.
double evaluate_dev(model::Encoder& encoder, const data::StsPairs& dev_set, long step, std::ofstream& metrics);

// data.test's sets, each with its spec ("sick:PATH"), read before the model is.
using TestSets = std::vector<std::pair<std::string, data::StsPairs>>;
TestSets read_test_sets(const std::string& specs);

// Rank 0, at the end: the test scores of the final model, of best/ when there was a dev set, and
// of the base model the run started from (its directory, as the job names it), side by side.
void add_test_scores(const JobConfig& c, const model::Encoder& final_model, const TestSets& test_sets, bool have_best,
                     nlohmann::json& result);

// The run's last lines, one per test set: the test Spearman (x 100, as evaluate_sts gives it) of
// the base model beside the trained one(s).
std::vector<std::string> test_summary(const JobConfig& c, const nlohmann::json& result);

// The end of a run, on every rank: the run's phase table and this rank's achieved model FLOP/s
// beside what at::mm reaches on the model's linear-layer shapes (every rank measures at once, so
// that the peak sees the same sharing of cores as training did); rank 0 prints them.
// The dtype the linear layers' matmuls run in: bf16 under bf16 autocast (model.dtype) or with bf16
// gathered parameters (shard.param_dtype), else fp32. The at::mm peak beside the achieved FLOP/s
// is measured in it.
c10::ScalarType matmul_dtype(const JobConfig& c);
nlohmann::json profile_summary(const StepProfile& profile, const model::ModelShape& shape, const JobConfig& c,
                               const at::Device& device, const RunTotals& totals, int rank);

// Rank 0: eval.json (`result`), then the FINISHED marker, each written atomically: a run is
// finished when FINISHED exists (train/run_record.h).
void write_run_result(const std::string& output_dir, const nlohmann::json& result, long steps);

}  // namespace angle::train
