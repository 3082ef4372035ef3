#include "train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.h"
#include "comm/comm.h"
#include "core/atomic_output.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/text_file.h"
#include "core/version.h"
#include "eval/sts_eval.h"
#include "plan/model_shape.h"
#include "shard/fsdp.h"
#include "train/encode.h"
#include "train/matmul_peak.h"
#include "train/micro_batch_loss.h"
#include "train/run_record.h"
#include "train/schedule.h"
#include "train/step_batch.h"
#include "train/step_profile.h"
#include "train/training_data.h"

namespace angle::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

loss::Weights loss_weights(const JobConfig& c) {
  loss::Weights w = loss::Weights::preset(c.preset);
  for (auto [field, value] : {std::pair{&w.cosine_w, c.cosine_w}, {&w.ibn_w, c.ibn_w}, {&w.cln_w, c.cln_w},
                              {&w.angle_w, c.angle_w}, {&w.cosine_tau, c.cosine_tau}, {&w.ibn_tau, c.ibn_tau},
                              {&w.angle_tau, c.angle_tau}})
    if (value) *field = *value;
  w.label_mode = loss::parse_label_mode(c.label_mode);
  w.angle_mean = c.angle_reduction == "mean";
  return w;
}

shard::ShardOptions shard_options(const JobConfig& c) {
  shard::ShardOptions o;
  o.stage = c.stage;
  o.param_dtype = c.param_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  o.reduce_dtype = c.reduce_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  o.bucket_mb = c.bucket_mb;
  o.inflight_bytes = static_cast<int64_t>(c.inflight_mb * (1 << 20));
  o.adam = {c.adam_beta1, c.adam_beta2, c.adam_eps, c.weight_decay};
  return o;
}

// SIGTERM / SIGUSR1 (Slurm before a time limit or preemption): finish the step, checkpoint, exit.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void request_stop(int signal) { g_stop_signal = signal; }

json score_json(const eval::StsScore& s) { return {{"spearman", s.spearman}, {"pearson", s.pearson}, {"n", s.n}}; }
std::string mib(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// Every rank must run the same job: compare a hash of the resolved configuration.
void check_same_job(comm::Comm& comm, const JobConfig& c) {
  const auto hash = static_cast<int64_t>(std::hash<std::string>{}(c.dump()) >> 1);
  at::Tensor all = comm.all_gather_rows(at::full({1}, hash, at::kLong).to(comm.device())).cpu();
  for (int r = 0; r < comm.size(); ++r)
    ANGLE_CHECK(all[r].item<int64_t>() == all[0].item<int64_t>(), "rank ", r, " runs a different job configuration "
                "than rank 0 (job file or overrides differ across ranks; hash ", all[r].item<int64_t>(), " vs ",
                all[0].item<int64_t>(), ")");
}

// Batch arithmetic that depends on the number of ranks, checked before any work.
void check_batch_split(const JobConfig& c, int world) {
  ANGLE_CHECK(c.global_batch % (static_cast<long>(world) * c.grad_accum) == 0, "train.global_batch ", c.global_batch,
              " must be divisible by ranks x train.grad_accum = ", world, " x ", c.grad_accum);
  if (c.chunk == 0) return;
  const long per_rank = c.global_batch / c.grad_accum / world;
  ANGLE_CHECK(c.chunk <= per_rank && per_rank % c.chunk == 0, "train.chunk ", c.chunk, " must divide the per-rank "
              "micro-batch of ", per_rank, " examples (train.global_batch / train.grad_accum / ", world, " ranks)");
}

void preflight(comm::Comm& comm, const JobConfig& c) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank())
      std::fprintf(stderr, "[rank %d/%d] host %s, local rank %d, %d threads, backend %s, device %s\n", comm.rank(),
                   comm.size(), host, comm.local_rank(), at::get_num_threads(), comm.backend().c_str(), c.device.c_str());
    if (comm.size() > 1) comm.barrier();
  }
}

// bf16 parameters or reductions on a device that cannot multiply bf16 matrices (CUDA before
// sm_80 fails here) are refused before any work.
void check_bf16(const at::Device& device) {
  try {
    at::Tensor a = at::ones({8, 8}, at::TensorOptions().dtype(at::kBFloat16).device(device));
    (void)at::mm(a, a).sum().item<float>();
  } catch (const std::exception& e) {
    ANGLE_FAIL("shard.param_dtype/reduce_dtype bf16: device ", device.str(), " cannot compute in bf16 (",
               std::string(e.what()).substr(0, 200), ")");
  }
}

// Model FLOPs of this rank's rows (plan/model_shape.h has the formula), for the achieved FLOP/s.
// Gradient caching's extra forward is not counted: these are the model's FLOPs, not the machine's.
struct FlopCounter {
  plan::ModelShape shape;
  // {tokens, FLOPs} of this rank's rows.
  std::pair<double, double> of(const StepBatch& batch) const {
    double tokens = 0, squares = 0;
    for (const auto* row : batch.rows) {
      const auto n = static_cast<double>(row->size());
      tokens += n, squares += n * n;
    }
    return {tokens, shape.train_flops(tokens, squares)};
  }
};

// The log phase: what a metrics.jsonl line reports about the steps since the previous one.
struct MetricsWindow {
  double start = now_seconds(), examples = 0, tokens = 0, flops = 0, comm_wait = 0;
  uint64_t comm_bytes = 0;
  json line(long step, long epoch, double loss, double lr, double grad_norm, long dropped,
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
              {"comm_wait_s", comm_wait}, {"comm_bytes", comm_bytes}};
    for (const auto& [k, v] : terms) j[k] = v;
    j.update(profile);
    return j;
  }
};

// A resumed run rewrites metrics.jsonl with the lines of the steps up to its checkpoint only
// (the interrupted run may have logged later steps, and a kill may have cut the last line), so
// that every step appears once however often the run is resumed. Returns the training time the
// kept lines reach (their last elapsed_s), from which the resumed run counts on.
double keep_metrics_until(const std::string& path, long last_step) {
  if (!fs::exists(path)) return 0;
  std::vector<std::string> kept;
  double elapsed = 0;
  for (const std::string& line : read_utf8_lines(path)) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<long>() <= last_step) {
      kept.push_back(line);
      if (j.contains("elapsed_s") && j["elapsed_s"].is_number()) elapsed = j["elapsed_s"].get<double>();
    }
  }
  AtomicOutput output(path);
  {
    std::ofstream out(output.temp_path());
    for (const std::string& line : kept) out << line << "\n";
    ANGLE_CHECK(out.good(), path, ": cannot write");
  }
  output.commit();
  return elapsed;
}

const eval::EmbedOptions kEvalOptions{64, false};

// Rank 0, between gather_full() and release_full(): the dev score, logged and written to metrics.
double evaluate_dev(model::Encoder& encoder, const data::StsPairs& dev_set, long step, std::ofstream& metrics) {
  encoder.model->train(false);
  const eval::StsScore dev = eval::evaluate_sts(encoder, dev_set, kEvalOptions);
  encoder.model->train(true);
  metrics << json{{"step", step}, {"dev", score_json(dev)}}.dump() << std::endl;
  log_info("step " + std::to_string(step) + ": dev spearman " + std::to_string(dev.spearman));
  return dev.spearman;
}

// Rank 0, at the end: the test score of the final model, of best/ when there was a dev set, and
// of the base model the run started from (its directory, as the job names it), side by side.
void add_test_scores(const JobConfig& c, const model::Encoder& final_model, const data::StsPairs& test_set,
                     bool have_best, json& result) {
  auto score_of = [&](const std::string& dir) {
    model::EncoderOptions options;
    options.pooling = c.pooling;
    options.max_length = c.max_length;
    options.device = c.device;
    return score_json(eval::evaluate_sts(model::load_encoder(dir, options), test_set, kEvalOptions));
  };
  result["final"] = {{"test", score_json(eval::evaluate_sts(final_model, test_set, kEvalOptions))}};
  if (have_best) result["best"]["test"] = score_of((fs::path(c.output_dir) / "best").string());
  result["base"] = {{"test", score_of(c.model_path)}};
}

// The run's last line: the test Spearman (x 100, as evaluate_sts gives it) of the base model
// beside the trained one(s).
std::string test_summary(const JobConfig& c, const json& result) {
  auto spearman = [](const json& score) {
    char text[16];
    std::snprintf(text, sizeof text, "%.2f", score["spearman"].get<double>());
    return std::string(text);
  };
  std::string line = "test " + c.test + ": Spearman base " + spearman(result["base"]["test"]) + ", trained " +
                     spearman(result["final"]["test"]) + " (final)";
  if (result.contains("best") && result["best"].contains("test"))
    line += ", " + spearman(result["best"]["test"]) + " (best dev, step " +
            std::to_string(result["best"]["step"].get<long>()) + ")";
  return line;
}

// The end of a run, on every rank: the run's phase table and this rank's achieved model FLOP/s
// beside what at::mm reaches on the encoder's linear-layer shapes (every rank measures at once, so
// that the peak sees the same sharing of cores as training did); rank 0 prints them.
json profile_summary(const StepProfile& profile, const plan::ModelShape& config, const JobConfig& c,
                     const at::Device& device, double tokens, double flops, int rank) {
  json j = profile.run_json();
  const double steps = static_cast<double>(std::max(1L, profile.run_steps()));
  // The rows of one forward pass: a micro-batch's tokens on this rank, or one chunk's.
  const double passes = steps * static_cast<double>(c.grad_accum) *
                        (c.chunk > 0 ? static_cast<double>(c.global_batch / c.grad_accum) / static_cast<double>(c.chunk) : 1.0);
  const auto rows = static_cast<int64_t>(tokens / std::max(1.0, passes));
  const double peak = linear_layers_mm_flops(config, rows, c.dtype == "bf16" ? at::kBFloat16 : at::kFloat, device, 0.25);
  const double achieved = flops / std::max(1e-9, profile.run_step_seconds());
  j["model_flops_per_step"] = flops / steps;
  j["achieved_flops_per_s"] = achieved;
  j["mm_peak_flops_per_s"] = peak;
  j["mm_rows"] = rows;
  j["threads"] = at::get_num_threads();
  if (rank == 0) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "\nmodel FLOPs per step (this rank) %.3g; achieved %.2f GFLOP/s = %.0f%% of at::mm's %.2f GFLOP/s on "
                  "the linear layers' shapes (%lld rows, %s, %d threads)",
                  flops / steps, achieved / 1e9, 100.0 * achieved / std::max(1.0, peak), peak / 1e9,
                  static_cast<long long>(rows), c.dtype == "bf16" ? "bf16" : "fp32", at::get_num_threads());
    log_info("time per step by phase (rank 0, " + std::to_string(profile.run_steps()) + " steps):\n" +
             profile.run_table() + line);
  }
  return j;
}

}  // namespace

// The run itself, on every rank alike.
int train(const JobConfig& c, comm::Comm& comm);

int run_training(const JobConfig& c) {
  std::unique_ptr<comm::Comm> comm = comm::make_comm(c.backend);
  comm->set_timeout(c.comm_timeout);
  try {
    return train(c, *comm);
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

int train(const JobConfig& c, comm::Comm& comm) {
  const int rank = comm.rank(), world = comm.size();
  check_batch_split(c, world);
  check_same_job(comm, c);
  if (c.threads) at::set_num_threads(*c.threads);
  else if (world > 1 && !std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);  // ranks x threads <= cores
  preflight(comm, c);
  fault::maybe_fail(rank, "startup");
  at::manual_seed(c.seed + 1000003ULL * static_cast<uint64_t>(rank));  // dropout masks differ across ranks
  // Evaluation files are read before the model: a typo fails in a second, not after loading.
  std::optional<data::StsPairs> dev_set, test_set;
  if (!c.dev.empty()) dev_set = data::read_sts_spec(c.dev);
  if (!c.test.empty()) test_set = data::read_sts_spec(c.test);
  if (c.is_llm && !model::is_adapter_dir(c.model_path)) {
    const bool decoder = model::is_decoder_dir(c.model_path);
    ANGLE_CHECK(*c.is_llm == decoder, "model.is_llm = ", *c.is_llm ? "true" : "false", " but ", c.model_path, " is ",
                decoder ? "a LLaMA-family decoder" : "a BERT-family encoder");
  }
  model::Encoder encoder = model::load_encoder(c.model_path, encoder_options(c));
  model::check_exportable(encoder.pooling);
  const TrainingData data(c, encoder.tokenizer, encoder.max_length);
  const LossSettings loss_settings{data.format(), loss_weights(c), data.weighted(), c.local_negatives};
  StepProfile profile;
  const EncodeOptions encode_options{c.dtype == "bf16", c.chunk, &profile};
  const int64_t rows_per_example = loss::rows_per_example(data.format());

  const data::GlobalSampler& sampler = data.sampler();
  const size_t micro = static_cast<size_t>(c.global_batch / c.grad_accum);
  long sampler_shift = 0;  // only the negative-control test shifts the data order
  // This rank's examples of each micro-batch of a step, read on a background thread one step ahead.
  auto fetch = [&](long step) { return data.rank_slices(step, rank, world, micro, sampler_shift); };
  const long batches_per_epoch = static_cast<long>(sampler.steps_per_epoch());
  const long total_steps = c.max_steps > 0 ? c.max_steps : c.epochs * batches_per_epoch;
  const long eval_every = c.eval_every > 0 ? c.eval_every : batches_per_epoch;

  model::Backbone& model = *encoder.model;
  if (c.param_dtype == "bf16" || c.reduce_dtype == "bf16") check_bf16(encoder.device);
  const FlopCounter flop_counter{plan::shape_from_config(
      (fs::path(encoder.export_spec.source_dir) / "config.json").string(), encoder.export_spec.lora)};
  // Weight decay on matrices (adapters included), not on biases and norms (HF Trainer's rule).
  shard::ShardedModel sharded(model, comm, shard_options(c), [](const std::string& name) {
    return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos || name.ends_with("norm.weight"));
  });
  const shard::MemoryLedger& memory = sharded.memory();
  if (rank == 0)
    log_info("train: " + std::to_string(sampler.epoch_length()) + " examples (format " + data.format_name() +
             (data.weighted() ? ", weighted" : "") + "), " + std::to_string(total_steps) + " steps of " +
             std::to_string(c.global_batch) + " on " + std::to_string(world) + " rank(s)" +
             (c.chunk ? ", gradient caching in chunks of " + std::to_string(c.chunk) : "") + ", pooling " +
             encoder.pooling.name() + ", max length " + std::to_string(encoder.max_length) + ", output " +
             c.output_dir + "\nsharding: stage " + std::to_string(c.stage) + ", param " + c.param_dtype + ", reduce " +
             c.reduce_dtype + "; model state per rank: parameters " + mib(memory.live(shard::MemoryLedger::kParams)) +
             ", gradients " + mib(memory.live(shard::MemoryLedger::kGrads)) + ", optimizer " +
             mib(memory.live(shard::MemoryLedger::kOptim)) + " (" + std::to_string(sharded.numel()) + " parameters)");

  long start_step = 1;
  std::optional<ckpt::TrainingState> resumed;
  if (c.resume != "none") {
    const std::string skip = fault::skip_restore();
    resumed = ckpt::resume(c.output_dir, {c.resume, c.allow_job_change, skip != "rng"}, c.identity_hash(), sharded, comm);
    if (resumed) {
      start_step = resumed->step + 1;
      const uint64_t expected = sampler.cursor_after(static_cast<uint64_t>(resumed->step - 1));
      ANGLE_CHECK(resumed->cursor == expected, "checkpoint cursor ", resumed->cursor, " does not match step ",
                  resumed->step, " of this data (", expected, "): the training data changed");
      if (skip == "cursor") sampler_shift = resumed->step;
    } else if (rank == 0) {
      log_info("no complete checkpoint in " + c.output_dir + ": starting from step 1");
    }
  }
  std::ofstream metrics;
  double elapsed_before = 0;  // training seconds of the earlier runs this one resumes
  if (rank == 0) {
    fs::create_directories(c.output_dir);
    // What an earlier run here concluded no longer holds (angle report reads these two).
    fs::remove(fs::path(c.output_dir) / kEvalFile);
    fs::remove(fs::path(c.output_dir) / kFailedFile);
    std::ofstream(fs::path(c.output_dir) / "job.ini") << c.dump();
    const std::string metrics_path = (fs::path(c.output_dir) / kMetricsFile).string();
    if (start_step > 1) elapsed_before = keep_metrics_until(metrics_path, start_step - 1);
    metrics.open(metrics_path, start_step > 1 ? std::ios::app : std::ios::trunc);
    ANGLE_CHECK(metrics.good(), c.output_dir, "/metrics.jsonl: cannot open for writing");
  }
  double best_dev = -1e9;
  long best_step = 0;
  if (resumed) best_dev = resumed->best_dev, best_step = resumed->best_step;
  auto checkpoint = [&](long step) {
    StepProfile::Scope scope(&profile, Phase::kCheckpoint);
    ckpt::save(c.output_dir, {step, sampler.cursor_after(static_cast<uint64_t>(step - 1)), c.dump(), c.identity_hash(),
                              best_dev, best_step},
               sharded, comm, c.keep_last);
  };
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);

  auto next_batch = std::async(std::launch::async, fetch, start_step);
  Progress progress("step", total_steps, 5.0);
  MetricsWindow window;
  int64_t run_peak_state = 0;
  double run_examples = 0, run_tokens = 0, run_flops = 0;
  const double run_start = now_seconds();
  profile.start();
  model.train(true);

  for (long step = start_step; step <= total_steps; ++step) {
    const long epoch = (step - 1) / batches_per_epoch;
    const double lr = c.lr * linear_schedule(step - 1, c.warmup_steps, total_steps);
    // Data: this rank's slice of each micro-batch (the next step's is read meanwhile).
    auto micro_batches = [&] {
      StepProfile::Scope scope(&profile, Phase::kData);
      return next_batch.get();
    }();
    if (step < total_steps) next_batch = std::async(std::launch::async, fetch, step + 1);
    std::map<std::string, double> terms;
    double step_loss = 0, window_examples_of_step = 0;
    long dropped = 0;
    for (const auto& examples : micro_batches) {
      // Batch: the global duplicate filter, this rank's token rows.
      const StepBatch batch = [&] {
        StepProfile::Scope scope(&profile, Phase::kBatch);
        return assemble_batch(examples, rows_per_example, c.filter_duplicate, comm);
      }();
      dropped += batch.dropped;
      ANGLE_CHECK(batch.global_kept() > 0, "step ", step, ": every example of the batch is a duplicate of another; "
                  "set data.filter_duplicate = false or deduplicate the data");
      const auto [tokens, flops] = flop_counter.of(batch);
      window.tokens += tokens, window.flops += flops, window.examples += static_cast<double>(batch.global_kept());
      run_tokens += tokens, run_flops += flops;
      window_examples_of_step += static_cast<double>(batch.global_kept());
      // Encode, loss, backward (stages 2/3 reduce each gradient as backward produces it).
      forward_backward(encoder, sharded, batch, encode_options, [&](const at::Tensor& embeddings) {
        MicroBatchLoss value = micro_batch_loss(embeddings, batch, loss_settings, comm);
        fault::maybe_fail(rank, "step:" + std::to_string(step));
        ANGLE_CHECK(std::isfinite(value.value), "step ", step, ": loss is ", value.value,
                    " (not finite); lower optim.lr or check the data");
        step_loss += value.value / c.grad_accum;
        for (const auto& [k, v] : value.terms) terms[k] += v / c.grad_accum;
        return value.total / static_cast<double>(c.grad_accum);
      });
    }
    // Reduce (stage 1), clip, update: its wait in collectives is the reduce phase, the rest the optimizer's.
    window.comm_wait += comm.take_wait().wall_s;
    const double update_start = now_seconds(), update_cpu_start = process_cpu_seconds();
    const double grad_norm = sharded.step(lr, c.max_grad_norm);
    const comm::Comm::WaitTime update_wait = comm.take_wait();
    profile.add(Phase::kReduce, update_wait.wall_s, update_wait.cpu_s);
    profile.add(Phase::kOptimizer, now_seconds() - update_start - update_wait.wall_s,
                process_cpu_seconds() - update_cpu_start - update_wait.cpu_s);
    window.comm_wait += update_wait.wall_s;
    window.comm_bytes += comm.take_bytes();
    run_peak_state = std::max(run_peak_state, memory.peak());

    // Log.
    profile.end_step();
    if (rank == 0 && (step % c.log_every == 0 || step == total_steps)) {
      metrics << window.line(step, epoch, step_loss, lr, grad_norm, dropped, terms, memory,
                             elapsed_before + now_seconds() - run_start, profile.take_window()).dump() << std::endl;
      window = MetricsWindow{};
      sharded.reset_memory_peak();
    }
    run_examples += window_examples_of_step;
    if (rank == 0) {
      char detail[128];
      std::snprintf(detail, sizeof detail, "loss %.4f, lr %.2e, %.1f pairs/s", step_loss, lr,
                    run_examples / std::max(1e-9, now_seconds() - run_start));
      progress.update(step, step == total_steps, detail);
    }

    // A stop signal on any rank stops every rank after this step, with a checkpoint.
    at::Tensor stop = at::full({1}, static_cast<int64_t>(g_stop_signal), at::kLong).to(comm.device());
    if (world > 1) comm.all_reduce_sum(stop);
    if (stop.cpu()[0].item<int64_t>() != 0) {
      if (next_batch.valid()) next_batch.wait();
      checkpoint(step);
      const int signal = g_stop_signal ? static_cast<int>(g_stop_signal) : SIGTERM;
      if (rank == 0) log_info("stopped by signal " + std::to_string(signal) + " after step " + std::to_string(step) +
                              "; checkpoint written; resume with --run.resume auto");
      return 128 + signal;
    }

    // Evaluate.
    if (dev_set && (step % eval_every == 0 || step == total_steps)) {
      StepProfile::Scope scope(&profile, Phase::kEval);
      sharded.gather_full();
      if (rank == 0) {  // the other ranks wait at the barrier (within the watchdog timeout)
        const double dev = evaluate_dev(encoder, *dev_set, step, metrics);
        if (dev > best_dev) {
          best_dev = dev, best_step = step;
          model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "best").string());
        }
      }
      comm.barrier();
      sharded.release_full();
    }
    // Checkpoint, after the evaluation, so that it knows this step's dev score.
    if (c.checkpoint_every > 0 && (step % c.checkpoint_every == 0 || step == total_steps)) checkpoint(step);
  }
  model.train(false);
  profile.end_run();
  const json step_profile = profile_summary(profile, flop_counter.shape, c, encoder.device, run_tokens, run_flops, rank);
  run_peak_state = std::max(run_peak_state, memory.peak());
  std::fprintf(stderr, "[rank %d] peak model state %.1f MiB (stage %d), peak RSS %.1f MiB\n", rank,
               static_cast<double>(run_peak_state) / (1 << 20), c.stage,
               static_cast<double>(peak_resident_bytes()) / (1 << 20));
  sharded.gather_full();
  if (rank == 0) {
    model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "final").string());
    const double seconds = now_seconds() - run_start;
    json result = {{"job", c.job_file}, {"steps", total_steps}, {"ranks", world}, {"seed", c.seed},
                   {"version", version()}, {"revision", revision()}, {"wall_s", elapsed_before + seconds},
                   {"pairs_per_s", run_examples / std::max(1e-9, seconds)}, {"profile", step_profile}};
    if (dev_set) result["best"] = {{"step", best_step}, {"dev", {{"spearman", best_dev}}}};
    if (test_set) add_test_scores(c, encoder, *test_set, dev_set.has_value(), result);
    write_atomically((fs::path(c.output_dir) / kEvalFile).string(), result.dump(2) + "\n");  // means "finished"
    log_info("eval: " + result.dump());
    if (test_set) log_info(test_summary(c, result));
  }
  comm.barrier();
  return 0;
}

}  // namespace angle::train
