#include "train/run_metrics.h"

#include <ATen/Parallel.h>

#include <filesystem>

#include "core/atomic_output.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/text_file.h"
#include "eval/sts_eval.h"
#include "train/matmul_peak.h"
#include "train/run_record.h"

namespace angle::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const eval::EmbedOptions kEvalOptions{64, false, {}};

json score_json(const eval::StsScore& s) { return {{"spearman", s.spearman}, {"pearson", s.pearson}, {"n", s.n}}; }

}  // namespace

json MetricsWindow::line(long step, long epoch, double loss, double lr, double grad_norm, long dropped,
                         const std::map<std::string, double>& terms, const shard::MemoryLedger& memory, double elapsed,
                         const json& profile) const {
  const double seconds = std::max(1e-9, now_seconds() - start);
  json j = {{"step", step}, {"epoch", epoch}, {"elapsed_s", elapsed}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
            {"pairs_per_s", examples / seconds}, {"tokens_per_s", tokens / seconds},
            {"model_flops_per_s", flops / seconds}, {"rss_bytes", resident_bytes()},
            {"rss_peak_bytes", peak_resident_bytes()}, {"state_peak_bytes", memory.peak()},
            {"params_bytes", memory.at_peak(shard::MemoryLedger::kParams)},
            {"grads_bytes", memory.at_peak(shard::MemoryLedger::kGrads)},
            {"optim_bytes", memory.at_peak(shard::MemoryLedger::kOptim)}, {"dropped_duplicates", dropped},
            {"comm_wait_s", comm_wait}, {"comm_bytes", comm_bytes},
            {"comm_calls", comm_calls}};
  for (const auto& [k, v] : terms) j[k] = v;
  j.update(profile);
  return j;
}

double keep_metrics_until(const std::string& path, long last_step) {
  if (!fs::exists(path)) return 0;
  std::string kept;
  double elapsed = 0;
  for (const std::string& line : read_utf8_lines(path)) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<long>() <= last_step) {
      kept += line + "\n";
      if (j.contains("elapsed_s") && j["elapsed_s"].is_number()) elapsed = j["elapsed_s"].get<double>();
    }
  }
  write_atomically(path, kept);
  return elapsed;
}

double evaluate_dev(model::Encoder& encoder, const data::StsPairs& dev_set, long step, std::ofstream& metrics) {
  encoder.model->train(false);
  const eval::StsScore dev = eval::evaluate_sts(encoder, dev_set, kEvalOptions);
  encoder.model->train(true);
  metrics << json{{"step", step}, {"dev", score_json(dev)}}.dump() << std::endl;
  log_info("step " + std::to_string(step) + ": dev spearman " + std::to_string(dev.spearman));
  return dev.spearman;
}

TestSets read_test_sets(const std::string& specs) {
  TestSets sets;
  for (const std::string& spec : split(specs, ','))
    if (!spec.empty()) sets.emplace_back(spec, data::read_sts_spec(spec));
  return sets;
}

void add_test_scores(const JobConfig& c, const model::Encoder& final_model, const TestSets& test_sets, bool have_best,
                     json& result) {
  // Each model is loaded once and scored on every set; "test" is the first set's score (sweeps and
  // reports read it), "tests" every set's by its spec.
  auto scores = [&](const model::Encoder& encoder, const std::string& who) {
    for (const auto& [spec, pairs] : test_sets) {
      json score = score_json(eval::evaluate_sts(encoder, pairs, kEvalOptions));
      if (!result[who].contains("test")) result[who]["test"] = score;
      result[who]["tests"][spec] = score;
    }
  };
  auto load = [&](const std::string& dir) {
    model::EncoderOptions options = evaluation_options(c);
    options.device = final_model.device.str();  // the device training ran on, as placed
    return model::load_encoder(dir, options);
  };
  scores(final_model, "final");
  if (have_best) scores(load((fs::path(c.output_dir) / "best").string()), "best");
  scores(load(c.model_path), "base");
}

std::vector<std::string> test_summary(const JobConfig& c, const json& result) {
  auto spearman = [](const json& score) {
    char text[16];
    std::snprintf(text, sizeof text, "%.2f", score["spearman"].get<double>());
    return std::string(text);
  };
  std::vector<std::string> lines;
  for (const std::string& spec : split(c.test, ',')) {
    if (spec.empty()) continue;
    std::string line = "test " + spec + ": Spearman base " + spearman(result["base"]["tests"][spec]) + ", trained " +
                       spearman(result["final"]["tests"][spec]) + " (final)";
    if (result.contains("best") && result["best"].contains("tests"))
      line += ", " + spearman(result["best"]["tests"][spec]) + " (best dev, step " +
              std::to_string(result["best"]["step"].get<long>()) + ")";
    lines.push_back(line);
  }
  return lines;
}

c10::ScalarType matmul_dtype(const JobConfig& c) {
  return c.dtype == Dtype::bf16 || c.param_dtype == Dtype::bf16 ? at::kBFloat16 : at::kFloat;
}

json profile_summary(const StepProfile& profile, const model::ModelShape& shape, const JobConfig& c,
                     const at::Device& device, const RunTotals& totals, int rank) {
  json j = profile.run_json();
  const double steps = static_cast<double>(std::max(1L, profile.run_steps()));
  // The rows of one forward pass: a micro-batch's tokens on this rank, or one chunk's.
  const double passes = steps * static_cast<double>(c.grad_accum) *
                        (c.chunk > 0 ? static_cast<double>(c.global_batch / c.grad_accum) / static_cast<double>(c.chunk) : 1.0);
  const auto rows = static_cast<int64_t>(totals.tokens / std::max(1.0, passes));
  const bool bf16 = matmul_dtype(c) == at::kBFloat16;
  const double peak = linear_layers_mm_flops(shape, rows, bf16 ? at::kBFloat16 : at::kFloat, device, 0.25);
  const double achieved = totals.flops / std::max(1e-9, profile.run_step_seconds());
  j["model_flops_per_step"] = totals.flops / steps;
  j["achieved_flops_per_s"] = achieved;
  j["mm_peak_flops_per_s"] = peak;
  j["mm_rows"] = rows;
  j["threads"] = at::get_num_threads();
  if (rank == 0) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "\nmodel FLOPs per step (this rank) %.3g; achieved %.2f GFLOP/s = %.0f%% of at::mm's %.2f GFLOP/s on "
                  "the linear layers' shapes (%lld rows, %s, %d threads)",
                  totals.flops / steps, achieved / 1e9, 100.0 * achieved / std::max(1.0, peak), peak / 1e9,
                  static_cast<long long>(rows), bf16 ? "bf16" : "fp32", at::get_num_threads());
    log_info("time per step by phase (rank 0, " + std::to_string(profile.run_steps()) + " steps):\n" +
             profile.run_table() + line);
  }
  return j;
}

void write_run_result(const std::string& output_dir, const json& result, long steps) {
  write_atomically((fs::path(output_dir) / kEvalFile).string(), result.dump(2) + "\n");
  write_atomically((fs::path(output_dir) / kFinishedFile).string(), "step " + std::to_string(steps) + "\n");
}

}  // namespace angle::train
