#include "plan/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/memory.h"
#include "core/text_file.h"
#include "loss/angle_loss.h"
#include "model/decoder_config.h"
#include "model/encoder.h"
#include "plan/calibrate.h"
#include "plan/projection.h"
#include "text/tokenizer.h"
#include "train/job_config.h"
#include "train/training_data.h"

namespace angle::plan {
namespace {

// An accelerator: AdamW reads and writes about 36 bytes per fp32 parameter, a parameter copy 2
// per byte, both bound by the memory bandwidth.
constexpr double kAdamWBytesPerParam = 36, kCopyBytesPerByte = 2;

double positive(const char* what, double value) {
  ANGLE_CHECK(std::isfinite(value) && value > 0, what, " ", value, ": must be a positive number");
  return value;
}

int64_t positive_int(const char* name, int64_t v) {
  ANGLE_CHECK(v > 0, "--", name, " ", v, ": must be a positive integer");
  return v;
}

// "intra=GB/s,inter=GB/s,latency=us,inter_latency=us,inter_links=K": the bandwidth within a node
// and across nodes (per link across nodes), the latency per message (within; across too, unless
// inter_latency gives it), and the links a node has across nodes (default: one per rank).
void apply_link(const std::string& spec, Machine& m) {
  std::map<std::string, double> values;
  for (const std::string& item : split(spec, ',')) {
    const auto eq = item.find('=');
    char* end = nullptr;
    const std::string key = item.substr(0, eq), text = eq == std::string::npos ? "" : item.substr(eq + 1);
    const double v = std::strtod(text.c_str(), &end);
    ANGLE_CHECK(eq != std::string::npos && !text.empty() && *end == '\0' && std::isfinite(v) && v > 0 &&
                    (key == "intra" || key == "inter" || key == "latency" || key == "inter_latency" ||
                     key == "inter_links"),
                "--link '", spec, "': expected intra=GB/s[,inter=GB/s][,latency=us][,inter_latency=us][,inter_links=K] with positive "
                "numbers");
    values[key] = v;
  }
  if (values.count("latency")) m.alpha_s = m.inter_alpha_s = values["latency"] * 1e-6;
  if (values.count("inter_latency")) m.inter_alpha_s = values["inter_latency"] * 1e-6;
  if (values.count("intra")) m.beta_bytes_per_s = values["intra"] * 1e9;
  if (values.count("inter")) m.inter_beta_bytes_per_s = values["inter"] * 1e9;
  if (values.count("inter_links")) {
    ANGLE_CHECK(values["inter_links"] == std::floor(values["inter_links"]), "--link '", spec,
                "': inter_links must be a whole number of links per node");
    m.inter_links = static_cast<int64_t>(values["inter_links"]);
  }
}

// The machine: a calibration file or the defaults, then --flops, --cores, --per-node, --link.
Machine machine_from(const MachineOptions& o, int64_t ranks, Machine m) {
  if (o.file) m = load_machine(*o.file);
  if (o.flops) m.flops_per_thread = positive("--flops", *o.flops);
  if (o.cores) m.cores = static_cast<int64_t>(positive("--cores", static_cast<double>(*o.cores)));
  m.ranks_per_node = o.per_node ? *o.per_node : ranks;
  ANGLE_CHECK(m.ranks_per_node >= 1, "--per-node must be at least 1");
  if (o.link) apply_link(*o.link, m);
  return m;
}

// The rank with the most model FLOPs sets the pace of a synchronous step; the ranks sharing rank
// 0's node share its cores.
struct Work {
  StepCost slowest;
  double node_flops = 0;
  void add(StepCost t, bool on_rank0_node) {
    const double flops = t.forward_flops + t.backward_flops;
    if (on_rank0_node) node_flops += flops;
    if (flops > slowest.forward_flops + slowest.backward_flops) slowest = std::move(t);
  }
};

// Step time at n ranks: each updates its shard of the trainable parameters and (stages 1, 2)
// copies the re-gathered ones.
StepTime time_at(const PlanReport& o, int64_t n, int64_t threads, const StepCost& traffic, const Work& work,
                 int64_t param_bytes) {
  Machine m = o.machine;
  m.ranks_per_node = std::min(m.ranks_per_node, n);
  m.threads_per_rank = threads;
  const RankGroups groups(n, n == o.ranks ? o.replicas : 1);
  const int64_t g = groups.size(Among::shard);
  int64_t shard_params = 0;
  for (const model::UnitShape& u : o.shape.units) shard_params += (u.numel() + g - 1) / g;
  return step_time(traffic, work.slowest, work.node_flops, groups, m, shard_params,
                   o.stage < 3 ? o.shape.numel() * param_bytes : 0);
}

// The peak against `gb` per rank, and the most examples one forward pass can take within it,
// activations scaled linearly with the rows of the largest forward: the largest train.chunk, or
// (without caching) the largest global batch.
MemoryFit memory_fit(const PlanReport& o, double gb) {
  const StateBytes& state = o.state;
  const PeakBytes& peak = o.peak;
  MemoryFit fit;
  fit.gb = gb;
  const double limit = positive("--memory-gb", gb) * 1e9;
  fit.limit_bytes = limit;
  fit.fits = static_cast<double>(peak.total()) <= limit;
  fit.state_fits = static_cast<double>(state.total()) <= limit;
  const double room = (limit - static_cast<double>(peak.runtime + peak.state)) / kHeapOverhead -
                      static_cast<double>(peak.loss);
  const double per_example = static_cast<double>(peak.activations) /
                             static_cast<double>(std::max<int64_t>(1, o.activation_rows)) * o.rows_per_example;
  fit.max_examples = static_cast<int64_t>(std::max(0.0, room / per_example));
  if (static_cast<double>(peak.runtime + peak.load) > limit) fit.max_examples = 0;
  return fit;
}

// What the model's config says of positions and dropout (a decoder's only dropout is attention's).
struct ConfigLimits {
  int64_t max_positions = 0;
  bool dropout = false;
};
ConfigLimits config_limits(const model::ModelShape& shape, const std::string& config_path) {
  ConfigLimits l;
  if (shape.decoder) {
    const auto config = model::DecoderConfig::from_file(config_path);
    l.max_positions = config.max_position_embeddings, l.dropout = config.attention_dropout > 0;
  } else {
    const auto config = model::BertConfig::from_file(config_path);
    l.max_positions = config.max_position_embeddings;
    l.dropout = config.hidden_dropout_prob > 0 || config.attention_probs_dropout_prob > 0;
  }
  return l;
}

// Every rank in steps 1..S: the peak memory is the largest forward and loss of any of them (a
// rank's RSS keeps its high-water mark); step S gives rank 0's traffic (into o.comm) and the
// step's work.
Work simulate_ranks(PlanReport& o, const StepSetup& setup, int64_t& activations, int64_t& loss, bool& dense_words) {
  Work work;
  for (long s = 1; s <= o.step; ++s)
    for (int r = 0; r < o.ranks; ++r) {
      StepCost t = rank_step_cost(setup, r, s);
      dense_words = dense_words || t.dense_words;
      if (t.activation_bytes > activations) activations = t.activation_bytes, o.activation_rows = t.activation_rows;
      loss = std::max(loss, t.loss_bytes);
      if (s < o.step) continue;
      if (r == 0) o.comm = t;
      work.add(std::move(t), r < o.machine.ranks_per_node);
    }
  return work;
}

}  // namespace

namespace {
// shard.replicate as the sharder resolves it (shard/shard_groups.h), with the machine's ranks per node.
int64_t replicas_of(const std::string& replicate, int64_t ranks, int64_t per_node) {
  const int64_t replicas = replicate == "node" ? ranks / per_node : std::stoll(replicate);
  ANGLE_CHECK(replicas >= 1 && ranks % replicas == 0 && (replicate != "node" || ranks % per_node == 0),
              "shard.replicate = ", replicate, " does not divide the ", ranks, " ranks",
              replicate == "node" ? " into nodes of --per-node " + std::to_string(per_node) : std::string());
  return replicas;
}
}  // namespace

PlanReport plan_job(const JobPlanOptions& opt) {
  const int64_t ranks = opt.ranks;
  auto job = train::parse_job(opt.job_file, opt.overrides);
  train::check_batch_split(*job, ranks);
  const std::string config_path = job->model_path + "/config.json";
  const model::LoraConfig lora = train::lora_config(*job);
  PlanReport o;
  o.shape = model::shape_from_config(config_path, lora);
  const model::ModelShape& shape = o.shape;
  const ConfigLimits config = config_limits(shape, config_path);
  text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(job->model_path);
  const size_t max_length =
      job->max_length.value_or(model::default_max_length(job->model_path, tokenizer, config.max_positions));
  const train::TrainingData data(*job, tokenizer, max_length);

  ShardSettings shard;
  shard.stage = job->stage.number();
  shard.ranks = ranks;
  shard.param_bytes = train::element_bytes(job->param_dtype);
  shard.reduce_bytes = train::element_bytes(job->reduce_dtype);
  shard.inflight_bytes = static_cast<int64_t>(job->inflight_mb * (1 << 20));
  shard.bucket_mb = job->bucket_mb;
  Machine cpu;
  cpu.cores = std::max(1u, std::thread::hardware_concurrency());
  o.machine = machine_from(opt.machine, ranks, cpu);
  shard.replicas = o.replicas = replicas_of(job->replicate, ranks, o.machine.ranks_per_node);
  o.subject = job->job_file, o.ranks = ranks, o.stage = job->stage.number(), o.grad_accum = job->grad_accum, o.step = opt.step;
  o.rows_per_example = loss::rows_per_example(data.format());
  // What this process holds now (the runtime, the tokenizer and the job's data, as a training
  // rank does before it loads the model) is the base of the peak-RSS estimate.
  const int64_t runtime = static_cast<int64_t>(resident_bytes());
  o.runtime_label = "runtime and data";
  o.machine_label = "thread, " + std::to_string(o.machine.cores) + " cores per node";
  StepSetup setup{&*job, &shape, &data, shard, tokenizer.encode("", max_length), tokenizer.pad_id(),
                  job->dropout ? *job->dropout > 0 : config.dropout, lora.enabled() && lora.dropout > 0};
  int64_t activations = 0, loss = 0;
  const Work work = simulate_ranks(o, setup, activations, loss, shard.dense_words);
  o.state = state_peak(shape, shard);
  o.peak = peak_bytes(shape, shard, runtime, activations, loss);
  o.time = time_at(o, ranks, job->threads ? *job->threads : (ranks > 1 ? 1 : o.machine.cores), o.comm, work,
                   shard.param_bytes);
  StepSetup single = setup;
  single.shard.ranks = single.shard.replicas = 1;
  Work one_rank;
  one_rank.add(rank_step_cost(single, 0, opt.step), true);
  o.time1 = time_at(o, 1, job->threads ? *job->threads : o.machine.cores, one_rank.slowest, one_rank, shard.param_bytes);
  o.steps_per_epoch = static_cast<double>(data.sampler().steps_per_epoch());
  if (opt.memory_gb) o.fit = memory_fit(o, *opt.memory_gb);
  return o;
}

PlanReport plan_projection(const ProjectionOptions& opt) {
  const int64_t ranks = opt.ranks;
  ANGLE_CHECK(opt.lora >= 0, "--lora ", opt.lora, ": must be 0 (full fine-tuning) or a positive rank");
  model::LoraConfig adapters;
  adapters.r = opt.lora;
  PlanReport o;
  o.shape = model::shape_from_config(opt.config, adapters);
  const model::ModelShape& shape = o.shape;
  const std::string& format = opt.format;
  ANGLE_CHECK(format == "A" || format == "B" || format == "C", "--format '", format, "': expected A, B or C");
  ANGLE_CHECK(opt.dtype == "bf16" || opt.dtype == "fp32", "--dtype '", opt.dtype, "': expected bf16 or fp32");
  ANGLE_CHECK(opt.machine.flops, "--project needs --flops: the model FLOP/s one accelerator achieves");
  ANGLE_CHECK(opt.chunk >= 0, "--chunk ", opt.chunk, ": must be 0 (no gradient caching) or positive");
  const UniformBatch batch{positive_int("global-batch", opt.global_batch), positive_int("tokens", opt.tokens),
                           format == "C" ? 3 : 2, opt.chunk};
  ShardSettings shard;
  shard.stage = opt.stage;
  ANGLE_CHECK(shard.stage >= 1 && shard.stage <= 3, "--stage ", shard.stage, ": expected 1, 2 or 3");
  shard.ranks = ranks;
  shard.param_bytes = shard.reduce_bytes = opt.dtype == "bf16" ? 2 : 4;
  o.subject = opt.config, o.ranks = ranks, o.stage = shard.stage, o.rows_per_example = batch.rows_per_example, o.step = 1;
  // One accelerator per rank; NCCL moves data beside the kernels and reduces along a ring; the
  // optimizer and the parameter copies are bound by the accelerator's memory bandwidth.
  Machine device;
  device.comm_on_cores = false, device.tree_all_reduce = true;
  const double hbm = positive("--hbm", opt.hbm_gb_s) * 1e9;
  device.optimizer_s_per_param = kAdamWBytesPerParam / hbm;
  device.copy_bytes_per_s = hbm / kCopyBytesPerByte;
  device.async_latency_s = 0;
  o.machine = machine_from(opt.machine, ranks, device);
  o.machine.cores = o.machine.ranks_per_node;
  shard.replicas = o.replicas = replicas_of(opt.replicate, ranks, o.machine.ranks_per_node);
  shard.bucket_mb = opt.bucket_mb;
  o.machine_label = "accelerator, " + std::to_string(o.machine.ranks_per_node) + " per node";
  const StepCost step = uniform_step_cost(shape, shard, batch);
  shard.dense_words = step.dense_words;
  o.state = state_peak(shape, shard);
  o.comm = step;
  o.activation_rows = step.activation_rows;
  o.runtime_label = "reserved";
  o.peak = peak_bytes(shape, shard, static_cast<int64_t>(opt.reserve_gb * 1e9), step.activation_bytes, step.loss_bytes);
  // The weights reach the accelerator shard by shard from host memory.
  o.peak.load = 0;
  Work work;
  work.add(step, true);
  work.node_flops = (step.forward_flops + step.backward_flops) * static_cast<double>(std::min(o.machine.ranks_per_node, ranks));
  o.time = time_at(o, ranks, 1, step, work, shard.param_bytes);
  ShardSettings single = shard;
  single.ranks = single.replicas = 1;
  Work one;
  one.add(uniform_step_cost(shape, single, batch), true);
  o.time1 = time_at(o, 1, 1, one.slowest, one, shard.param_bytes);
  if (opt.examples)
    o.steps_per_epoch = std::ceil(static_cast<double>(positive_int("examples", *opt.examples)) /
                                  static_cast<double>(batch.global_batch));
  if (opt.memory_gb) o.fit = memory_fit(o, *opt.memory_gb);
  return o;
}

}  // namespace angle::plan
