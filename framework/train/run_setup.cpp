// TrainingRun's set-up: checks that every rank runs the same job on a batch it can split, the
// data, the model, the sharding, the resume from a checkpoint and the output directory.
#include "train/training_run.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <filesystem>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/memory.h"
#include "train/device_clock.h"
#include "train/run_record.h"
#include "train/run_signals.h"
#include "train/shared_inputs.h"

namespace angle::train {
namespace fs = std::filesystem;

namespace {

loss::Weights loss_weights(const JobConfig& c) {
  loss::Weights w = loss::Weights::preset(c.preset);
  for (auto [field, value] : {std::pair{&w.cosine_w, c.cosine_w}, {&w.ibn_w, c.ibn_w}, {&w.cln_w, c.cln_w},
                              {&w.angle_w, c.angle_w}, {&w.cosine_tau, c.cosine_tau}, {&w.ibn_tau, c.ibn_tau},
                              {&w.angle_tau, c.angle_tau}})
    if (value) *field = *value;
  w.label_mode = c.label_mode;
  w.angle_mean = c.angle_reduction == AngleReduction::mean;
  w.false_negatives = c.false_negatives.value_or(loss::FalseNegatives::none);
  w.false_negative_margin = c.false_negative_margin.value_or(w.false_negative_margin);
  return w;
}

// The loss of the job on data of `format`, checked against the model: `hidden` wide, `layers` deep.
LossSettings loss_settings(const JobConfig& c, loss::Format format, bool weighted, int64_t hidden, int64_t layers,
                           bool report) {
  LossSettings s{format, loss_weights(c), weighted, c.local_negatives, matryoshka(c), espresso(c), hidden};
  const bool angle = s.weights.angle_w > 0;
  loss::check_matryoshka(s.matryoshka, hidden, angle, "loss.matryoshka");
  if (report && s.matryoshka.enabled() && s.matryoshka.dims.front() != hidden)
    log_info("warning: loss.matryoshka_dims leaves out the embedding size " + std::to_string(hidden) +
             ": the whole embedding is not trained, only its first " + std::to_string(s.matryoshka.dims.front()) +
             " dimensions");
  ANGLE_CHECK(format != loss::Format::A || s.weights.false_negatives == loss::FalseNegatives::none,
              "loss.false_negatives applies to formats B and C (queries and their positives); the training data is "
              "format A");
  if (s.espresso.enabled) {
    const int64_t k = s.espresso.compression_size;
    ANGLE_CHECK(k <= hidden, "loss.ese_compression_size ", k, " is above the embedding size ", hidden);
    ANGLE_CHECK(!angle || k % 2 == 0, "loss.ese_compression_size ", k, " is odd; the angle term splits an embedding "
                "into real and imaginary halves (set loss.angle_w 0 or use an even size)");
    ANGLE_CHECK(layers >= 2, "loss.ese needs a model of at least 2 layers (it teaches the lower ones); this one has ",
                layers);
  }
  return s;
}

shard::ShardOptions shard_options(const JobConfig& c, at::Device device) {
  shard::ShardOptions o;
  o.device = device;
  o.stage = c.stage.number();
  o.param_dtype = scalar_type(c.param_dtype);
  o.reduce_dtype = scalar_type(c.reduce_dtype);
  o.bucket_mb = c.bucket_mb;
  o.replicate = c.replicate;
  o.inflight_bytes = static_cast<int64_t>(c.inflight_mb * (1 << 20));
  o.adam = {c.adam_beta1, c.adam_beta2, c.adam_eps, c.weight_decay};
  return o;
}

// Weight decay on matrices (adapters included), not on biases and norms (HF Trainer's rule).
bool decays(const std::string& name) {
  return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos || name.ends_with("norm.weight"));
}

// Every rank must run the same job: compare a hash of the resolved configuration.
void check_same_job(comm::Comm& comm, const JobConfig& c) {
  const auto hash = static_cast<int64_t>(std::hash<std::string>{}(c.dump()) >> 1);
  at::Tensor all = comm.all_gather_rows(at::full({1}, hash, at::kLong).to(comm.device())).cpu();
  for (int r = 0; r < comm.size(); ++r)
    ANGLE_CHECK(all[r].item<int64_t>() == all[0].item<int64_t>(), "rank ", r, " runs a different job configuration "
                "than rank 0 (job file or overrides differ across ranks; hash ", all[r].item<int64_t>(), " vs ",
                all[0].item<int64_t>(), ")");
}

void preflight(comm::Comm& comm, const JobConfig& c) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank())
      std::fprintf(stderr, "[rank %d/%d] host %s, local rank %d, %d threads, backend %s, device %s\n", comm.rank(),
                   comm.size(), host, comm.local_rank(), at::get_num_threads(), comm.backend().c_str(), comm.device().str().c_str());
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

// What loading took, measured rather than counted: the peak resident set so far over the resident
// set before the model was read, on the rank where it grew most (mpi_fsdp_memory checks it).
void log_loading_memory(comm::Comm& comm, uint64_t resident_before) {
  const auto growth = static_cast<int64_t>(peak_resident_bytes()) - static_cast<int64_t>(resident_before);
  at::Tensor all = comm.all_gather_rows(at::full({1}, growth, at::kLong).to(comm.device())).cpu();
  if (comm.rank() == 0)
    log_info("loading: resident memory grew by at most " + mib(all.max().item<int64_t>()) + " on a rank (" +
             mib(static_cast<int64_t>(resident_before)) + " before)");
}

}  // namespace

TrainingRun::TrainingRun(const JobConfig& c, const TestHooks& hooks, comm::Comm& comm)
    : c_(c), hooks_(hooks), comm_(comm), rank_(comm.rank()), world_(comm.size()) {
  check_startup();
  // Evaluation files are read before the model: a typo fails in a second, not after loading.
  if (!c.dev.empty()) dev_set_ = data::read_sts_spec(c.dev);
  test_sets_ = read_test_sets(c.test);
  // Stage 3 on several ranks gathers and frees every unit twice a step (core/memory.h).
  if (world_ > 1 && c.stage.number() == 3) keep_large_blocks_mapped();
  const uint64_t resident_before = resident_bytes();
  load_model();
  shard_model();
  log_loading_memory(comm_, resident_before);
  if (c.resume.enabled()) resume_from_checkpoint();
  prepare_output_dir();
  install_stop_handlers();
  // This rank's examples of each micro-batch of a step, read on a background thread one step ahead.
  next_batch_ = std::async(std::launch::async, [this, step = start_step_] {
    return data_->rank_slices(step, rank_, world_, micro_batch_, sampler_shift_);
  });
  progress_ = std::make_unique<Progress>("step", total_steps_, 5.0);
  window_ = MetricsWindow{};
  totals_ = RunTotals{};
  profile_.set_device_clock(make_device_clock(encoder_->device));  // CUDA events on a GPU, none on the CPU
  profile_.start();
  encoder_->model->train(true);
}

TrainingRun::~TrainingRun() {
  if (next_batch_.valid()) next_batch_.wait();
}

// Ranks agree on the job and the batch split, see the same output directory and input files, and
// take their threads.
void TrainingRun::check_startup() {
  check_batch_split(c_, world_);
  check_same_job(comm_, c_);
  if (c_.threads) at::set_num_threads(*c_.threads);
  else if (world_ > 1 && !std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);  // ranks x threads <= cores
  preflight(comm_, c_);
  const std::vector<std::string> hosts = all_hostnames(comm_);
  check_shared_output_dir(comm_, c_.output_dir, hosts);
  check_same_files(comm_, job_input_files(c_), hosts);
  hooks_.fail_at(rank_, TestHooks::Point::kStartup);
  at::manual_seed(c_.seed);  // (dropout is keyed, model/dropout.h: nothing in a step draws from it)
}

// The model, the training data read with its tokenizer, and the step arithmetic.
void TrainingRun::load_model() {
  if (c_.is_llm && !model::is_adapter_dir(c_.model_path)) {
    const bool decoder = model::is_decoder_dir(c_.model_path);
    ANGLE_CHECK(*c_.is_llm == decoder, "model.is_llm = ", *c_.is_llm ? "true" : "false", " but ", c_.model_path, " is ",
                decoder ? "a LLaMA-family decoder" : "a BERT-family encoder");
  }
  model::EncoderOptions options = encoder_options(c_);
  options.device = comm_.device().str();  // the rank's device as placed (comm/placement.h), e.g. cuda:<local rank>
  options.defer_weights = true;  // each rank reads only its slices of the weights (shard_model)
  encoder_.emplace(model::load_encoder(c_.model_path, options));
  model::check_exportable(encoder_->pooling);
  data_ = std::make_unique<TrainingData>(c_, encoder_->tokenizer, encoder_->max_length, hooks_.dropout_salt);
  data_->check_ids(encoder_->model->vocab_size(), rank_, world_);
  shape_ = model::shape_from_config((fs::path(encoder_->export_spec.source_dir) / "config.json").string(),
                                    encoder_->export_spec.lora);
  loss_settings_ = loss_settings(c_, data_->format(), data_->weighted(), encoder_->model->hidden_size(), shape_.layers,
                                 rank_ == 0);
  encode_options_ = {c_.dtype == Dtype::bf16, c_.chunk, &profile_, loss_settings_.espresso.enabled};
  rows_per_example_ = loss::rows_per_example(data_->format());
  micro_batch_ = static_cast<size_t>(c_.global_batch / c_.grad_accum);
  batches_per_epoch_ = static_cast<long>(data_->sampler().steps_per_epoch());
  total_steps_ = c_.max_steps > 0 ? c_.max_steps : c_.epochs * batches_per_epoch_;
  eval_every_ = c_.eval_every > 0 ? c_.eval_every : batches_per_epoch_;
}

void TrainingRun::shard_model() {
  if (c_.param_dtype == Dtype::bf16 || c_.reduce_dtype == Dtype::bf16) check_bf16(encoder_->device);
  sharded_ = std::make_unique<shard::ShardedModel>(*encoder_->model, comm_, shard_options(c_, encoder_->device), decays,
                                                   encoder_->weights.get());
  if (rank_ != 0) return;
  const shard::MemoryLedger& memory = sharded_->memory();
  log_info("train: " + std::to_string(data_->sampler().epoch_length()) + " examples (format " + data_->format_name() +
           (data_->weighted() ? ", weighted" : "") + "), " + std::to_string(total_steps_) + " steps of " +
           std::to_string(c_.global_batch) + " on " + std::to_string(world_) + " rank(s)" +
           (c_.chunk ? ", gradient caching in chunks of " + std::to_string(c_.chunk) : "") + ", pooling " +
           encoder_->pooling.name() + ", max length " + std::to_string(encoder_->max_length) + ", output " +
           c_.output_dir + "\nsharding: stage " + std::to_string(c_.stage.number()) + ", param " + to_string(c_.param_dtype) +
           ", reduce " + to_string(c_.reduce_dtype) + "; model state per rank: parameters " + mib(memory.live(shard::MemoryLedger::kParams)) +
           ", gradients " + mib(memory.live(shard::MemoryLedger::kGrads)) + ", optimizer " +
           mib(memory.live(shard::MemoryLedger::kOptim)) + " (" + std::to_string(sharded_->numel()) + " parameters)");
}

void TrainingRun::resume_from_checkpoint() {
  const std::optional<ckpt::TrainingState> resumed =
      ckpt::resume(c_.output_dir, {c_.resume.str(), c_.allow_job_change}, c_.identity_hash(), *sharded_, comm_);
  if (!resumed) {
    if (rank_ == 0) log_info("no complete checkpoint in " + c_.output_dir + ": starting from step 1");
    return;
  }
  start_step_ = resumed->step + 1;
  const uint64_t expected = data_->sampler().cursor_after(static_cast<uint64_t>(resumed->step - 1));
  ANGLE_CHECK(resumed->cursor == expected, "checkpoint cursor ", resumed->cursor, " does not match step ",
              resumed->step, " of this data (", expected, "): the training data changed");
  if (hooks_.skip_restore == TestHooks::SkipRestore::kCursor) sampler_shift_ = resumed->step;
  best_dev_ = resumed->best_dev, best_step_ = resumed->best_step;
}

// Rank 0: what an earlier run here concluded no longer holds; job.ini and metrics.jsonl, kept up
// to the resumed step.
void TrainingRun::prepare_output_dir() {
  if (rank_ != 0) return;
  const fs::path dir(c_.output_dir);
  fs::create_directories(dir);
  for (const char* stale : {kFinishedFile, kEvalFile, kFailedFile}) fs::remove(dir / stale);
  std::ofstream(dir / "job.ini") << c_.dump();
  const std::string metrics_path = (dir / kMetricsFile).string();
  if (start_step_ > 1) elapsed_before_ = keep_metrics_until(metrics_path, start_step_ - 1);
  metrics_.open(metrics_path, start_step_ > 1 ? std::ios::app : std::ios::trunc);
  ANGLE_CHECK(metrics_.good(), c_.output_dir, "/metrics.jsonl: cannot open for writing");
}

}  // namespace angle::train
