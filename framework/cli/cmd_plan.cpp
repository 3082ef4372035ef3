#include <cmath>
#include <iomanip>
#include <map>
#include <thread>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/memory.h"
#include "loss/angle_loss.h"
#include "model/decoder_config.h"
#include "model/encoder.h"
#include "comm/comm.h"
#include "core/text_file.h"
#include "plan/calibrate.h"
#include "plan/comm_plan.h"
#include "plan/time_plan.h"
#include "plan/memory_plan.h"
#include "plan/projection.h"
#include "text/tokenizer.h"
#include "train/job_config.h"
#include "train/training_data.h"

namespace angle::cli {
namespace {

std::string mib(int64_t bytes) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return o.str();
}

double positive(const char* what, double value) {
  ANGLE_CHECK(std::isfinite(value) && value > 0, what, " ", value, ": must be a positive number");
  return value;
}

// "intra=GB/s,inter=GB/s,latency=us": the bandwidth the ring's slowest link has (inter when the
// ranks span nodes) and the latency.
void apply_link(const std::string& spec, bool across_nodes, plan::Machine& m) {
  std::map<std::string, double> values;
  for (const std::string& item : split(spec, ',')) {
    const auto eq = item.find('=');
    char* end = nullptr;
    const std::string key = item.substr(0, eq), text = eq == std::string::npos ? "" : item.substr(eq + 1);
    const double v = std::strtod(text.c_str(), &end);
    ANGLE_CHECK(eq != std::string::npos && !text.empty() && *end == '\0' && std::isfinite(v) && v > 0 &&
                    (key == "intra" || key == "inter" || key == "latency"),
                "--link '", spec, "': expected intra=GB/s[,inter=GB/s][,latency=us] with positive numbers");
    values[key] = v;
  }
  if (values.count("latency")) m.alpha_s = values["latency"] * 1e-6;
  const char* used = across_nodes && values.count("inter") ? "inter" : "intra";
  if (values.count(used)) m.beta_bytes_per_s = values[used] * 1e9;
}


// What a plan found: the table and the JSON of both kinds (a job with its data; a projection).
struct Outcome {
  std::string subject;  // the job file or the projected config.json
  int64_t ranks = 1, stage = 1, rows_per_example = 2, grad_accum = 1;
  const plan::ModelShape* shape = nullptr;
  plan::StateBytes state;
  plan::PeakBytes peak;
  std::string runtime_label;  // what peak.runtime is
  int64_t activation_rows = 1;
  long step = 1;
  plan::CommBytes comm;
  plan::StepTime time, time1;
  std::optional<double> steps_per_epoch;
  plan::Machine machine;
  std::string machine_label;
};

// The machine: a calibration file or the defaults, then --flops, --cores, --per-node, --link.
plan::Machine machine_from(const po::variables_map& vm, int64_t ranks, plan::Machine m) {
  if (vm.count("machine")) m = plan::load_machine(vm["machine"].as<std::string>());
  if (vm.count("flops")) m.flops_per_thread = positive("--flops", vm["flops"].as<double>());
  if (vm.count("cores")) m.cores = static_cast<int64_t>(positive("--cores", static_cast<double>(vm["cores"].as<int64_t>())));
  m.ranks_per_node = vm.count("per-node") ? vm["per-node"].as<int64_t>() : ranks;
  ANGLE_CHECK(m.ranks_per_node >= 1, "--per-node must be at least 1");
  if (vm.count("link")) apply_link(vm["link"].as<std::string>(), ranks > m.ranks_per_node, m);
  return m;
}

// The rank with the most model FLOPs sets the pace of a synchronous step; the ranks sharing rank
// 0's node share its cores.
struct Work {
  plan::CommBytes slowest;
  double node_flops = 0;
  void add(plan::CommBytes t, bool on_rank0_node) {
    const double flops = t.forward_flops + t.backward_flops;
    if (on_rank0_node) node_flops += flops;
    if (flops > slowest.forward_flops + slowest.backward_flops) slowest = std::move(t);
  }
};

// Step time at n ranks: each updates its shard of the trainable parameters and (stages 1, 2)
// copies the re-gathered ones.
plan::StepTime time_at(const Outcome& o, int64_t n, int64_t threads, const plan::CommBytes& traffic, const Work& work,
                       int64_t param_bytes) {
  plan::Machine m = o.machine;
  m.ranks_per_node = std::min(m.ranks_per_node, n);
  m.threads_per_rank = threads;
  int64_t shard_params = 0;
  for (const plan::UnitShape& u : o.shape->units) shard_params += (u.numel() + n - 1) / n;
  return plan::step_time(traffic, work.slowest, work.node_flops, n, m, shard_params,
                         o.stage < 3 ? o.shape->numel() * param_bytes : 0);
}

int report(const Outcome& o, const po::variables_map& vm) {
  const plan::StateBytes& state = o.state;
  const plan::PeakBytes& peak = o.peak;
  const double efficiency = o.time1.step() / (static_cast<double>(o.ranks) * o.time.step());
  nlohmann::json j = {{"ranks", o.ranks}, {"stage", o.stage}, {"parameters", o.shape->numel()},
                      {"frozen_parameters", o.shape->frozen()},
                      {"state_bytes", {{"params", state.params}, {"grads", state.grads}, {"optim", state.optim},
                                       {"total", state.total()}}},
                      {"peak_bytes", {{"runtime", peak.runtime}, {"load", peak.load}, {"retained", peak.retained},
                                      {"activations", peak.activations}, {"loss", peak.loss}, {"total", peak.total()}}},
                      {"comm_bytes", {{"step", o.step}, {"rank", 0}, {"total", o.comm.total()}}}};
  for (const auto& [phase, bytes] : o.comm.by_phase()) j["comm_bytes"][phase] = bytes;
  j["time"] = {{"compute_s", o.time.compute}, {"optimizer_s", o.time.optimizer}, {"comm_s", o.time.comm},
               {"exposed_comm_s", o.time.exposed_comm}, {"step_s", o.time.step()}, {"step_s_one_rank", o.time1.step()},
               {"scaling_efficiency", efficiency}, {"flops_per_thread", o.machine.flops_per_thread},
               {"alpha_s", o.machine.alpha_s}, {"beta_bytes_per_s", o.machine.beta_bytes_per_s}, {"cores", o.machine.cores}};
  if (o.steps_per_epoch) j["time"]["epoch_s"] = o.time.step() * *o.steps_per_epoch;
  std::optional<bool> fits;
  int64_t max_examples = 0;
  if (vm.count("memory-gb")) {
    const double limit = positive("--memory-gb", vm["memory-gb"].as<double>()) * 1e9;
    fits = static_cast<double>(peak.total()) <= limit;
    j["memory_limit_bytes"] = limit;
    j["fits"] = *fits;
    j["state_fits"] = static_cast<double>(state.total()) <= limit;
    // The most examples one forward pass can take within the limit, activations scaled linearly
    // with the rows of the largest forward: the largest train.chunk, or (without caching) the
    // largest global batch.
    const double room = (limit - static_cast<double>(peak.runtime + peak.retained + peak.state)) / plan::kHeapOverhead -
                        static_cast<double>(peak.loss);
    const double per_example = static_cast<double>(peak.activations) /
                               static_cast<double>(std::max<int64_t>(1, o.activation_rows)) * o.rows_per_example;
    max_examples = static_cast<int64_t>(std::max(0.0, room / per_example));
    if (static_cast<double>(peak.runtime + peak.load) > limit) max_examples = 0;
    j["max_examples_per_forward"] = max_examples;
  }
  if (vm["json"].as<bool>()) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "plan: " << o.subject << " on " << o.ranks << " rank(s), stage " << o.stage << ", " << o.shape->numel()
            << " trainable parameters";
  if (o.shape->frozen() > 0) std::cout << " (" << o.shape->frozen() << " frozen)";
  std::cout << "\n"
            << "model state per rank (peak): parameters " << mib(state.params) << ", gradients " << mib(state.grads)
            << ", optimizer " << mib(state.optim) << ", total " << mib(state.total()) << "\n"
            << "peak memory per rank (estimate): " << mib(peak.total()) << " = " << o.runtime_label << " "
            << mib(peak.runtime) << " + max(model load " << mib(peak.load) << ", model as loaded "
            << mib(peak.retained) << " + model state " << mib(peak.state) << " + " << plan::kHeapOverhead
            << " x (activations " << mib(peak.activations) << " + loss " << mib(peak.loss) << "))\n"
            << "communication of rank 0 in step " << o.step << ": " << mib(static_cast<int64_t>(o.comm.total()));
  for (const auto& [phase, bytes] : o.comm.by_phase()) std::cout << ", " << phase << " " << mib(static_cast<int64_t>(bytes));
  std::cout << "\n"
            << std::setprecision(3) << "time per step (rank 0): compute " << o.time.compute << " s, optimizer "
            << o.time.optimizer << " s, communication " << o.time.comm << " s of which exposed " << o.time.exposed_comm
            << " s, step " << o.time.step() << " s";
  if (o.steps_per_epoch) std::cout << "; epoch " << o.time.step() * *o.steps_per_epoch / 60 << " min";
  std::cout << "; 1 rank " << o.time1.step() << " s/step, scaling efficiency " << 100 * efficiency << "%\n"
            << "  (machine: " << o.machine.flops_per_thread / 1e9 << " GFLOP/s per " << o.machine_label << ", alpha "
            << o.machine.alpha_s * 1e6 << " us, beta " << o.machine.beta_bytes_per_s / 1e9 << " GB/s)\n";
  if (fits) {
    std::cout << "peak " << (*fits ? "fits" : "does NOT fit") << " in " << vm["memory-gb"].as<double>() << " GB per rank";
    if (max_examples == 0) std::cout << "; the model alone does not fit: more ranks or a higher stage\n";
    else
      std::cout << "; at most ~" << max_examples << " examples per forward pass: train.chunk " << max_examples
                << " (gradient caching), or without it a global batch up to "
                << max_examples * o.ranks * o.grad_accum << "\n";
  }
  return 0;
}

// A job with its model and data: every rank's step simulated (plan/comm_plan.h).
int plan_job(const po::variables_map& vm, const std::vector<std::string>& overrides, int64_t ranks, long step) {
  auto job = train::parse_job(vm["job"].as<std::string>(), overrides);
  ANGLE_CHECK(job->global_batch % (ranks * job->grad_accum) == 0, "train.global_batch ", job->global_batch,
              " must be divisible by ranks x train.grad_accum = ", ranks, " x ", job->grad_accum);
  const std::string config_path = job->model_path + "/config.json";
  const model::LoraConfig lora = train::lora_config(*job);
  const plan::ModelShape shape = plan::shape_from_config(config_path, lora);
  // What the model's config says of positions and dropout (a decoder's only dropout is attention's).
  int64_t max_positions = 0;
  bool config_dropout = false;
  if (shape.decoder) {
    const auto config = model::DecoderConfig::from_file(config_path);
    max_positions = config.max_position_embeddings, config_dropout = config.attention_dropout > 0;
  } else {
    const auto config = model::BertConfig::from_file(config_path);
    max_positions = config.max_position_embeddings;
    config_dropout = config.hidden_dropout_prob > 0 || config.attention_probs_dropout_prob > 0;
  }
  text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(job->model_path);
  const size_t max_length = job->max_length.value_or(model::default_max_length(job->model_path, tokenizer, max_positions));
  const train::TrainingData data(*job, tokenizer, max_length);

  plan::ShardSettings shard;
  shard.stage = job->stage;
  shard.ranks = ranks;
  shard.param_bytes = job->param_dtype == "bf16" ? 2 : 4;
  shard.reduce_bytes = job->reduce_dtype == "bf16" ? 2 : 4;
  shard.inflight_bytes = static_cast<int64_t>(job->inflight_mb * (1 << 20));
  Outcome o;
  o.subject = job->job_file, o.ranks = ranks, o.stage = job->stage, o.grad_accum = job->grad_accum, o.step = step;
  o.rows_per_example = loss::rows_per_example(data.format());
  o.shape = &shape;
  o.state = plan::state_peak(shape, shard);
  // What this process holds now (the runtime, the tokenizer and the job's data, as a training
  // rank does before it loads the model) is the base of the peak-RSS estimate.
  const int64_t runtime = static_cast<int64_t>(resident_bytes());
  o.runtime_label = "runtime and data";
  plan::Machine cpu;
  cpu.cores = std::max(1u, std::thread::hardware_concurrency());
  o.machine = machine_from(vm, ranks, cpu);
  o.machine_label = "thread, " + std::to_string(o.machine.cores) + " cores per node";
  plan::CommSetup setup{&*job, &shape, &data, shard, tokenizer.encode("", max_length), tokenizer.pad_id(),
                        job->dropout ? *job->dropout > 0 : config_dropout, lora.enabled() && lora.dropout > 0};
  // Every rank in steps 1..S: the peak memory is the largest forward and loss of any of them (a
  // rank's RSS keeps its high-water mark); step S gives rank 0's traffic and the step's work.
  Work work;
  int64_t activations = 0, loss = 0;
  for (long s = 1; s <= step; ++s)
    for (int r = 0; r < ranks; ++r) {
      plan::CommBytes t = plan::step_comm_bytes(setup, r, s);
      if (t.activation_bytes > activations) activations = t.activation_bytes, o.activation_rows = t.activation_rows;
      loss = std::max(loss, t.loss_bytes);
      if (s < step) continue;
      if (r == 0) o.comm = t;
      work.add(std::move(t), r < o.machine.ranks_per_node);
    }
  o.peak = plan::peak_bytes(shape, shard, runtime, activations, loss);
  o.time = time_at(o, ranks, job->threads ? *job->threads : (ranks > 1 ? 1 : o.machine.cores), o.comm, work,
                   shard.param_bytes);
  plan::CommSetup single = setup;
  single.shard.ranks = 1;
  Work one_rank;
  one_rank.add(plan::step_comm_bytes(single, 0, step), true);
  o.time1 = time_at(o, 1, job->threads ? *job->threads : o.machine.cores, one_rank.slowest, one_rank, shard.param_bytes);
  o.steps_per_epoch = static_cast<double>(data.sampler().steps_per_epoch());
  return report(o, vm);
}

int64_t positive_int(const po::variables_map& vm, const char* name) {
  const auto v = vm[name].as<int64_t>();
  ANGLE_CHECK(v > 0, "--", name, " ", v, ": must be a positive integer");
  return v;
}

// A model known by its config.json on N accelerators, uniform data (plan/projection.h).
int plan_projection(const po::variables_map& vm, int64_t ranks) {
  const std::string config = vm["project"].as<std::string>();
  const int64_t lora = vm["lora"].as<int64_t>();
  ANGLE_CHECK(lora >= 0, "--lora ", lora, ": must be 0 (full fine-tuning) or a positive rank");
  model::LoraConfig adapters;
  adapters.r = lora;
  const plan::ModelShape shape = plan::shape_from_config(config, adapters);
  const std::string format = vm["format"].as<std::string>(), dtype = vm["dtype"].as<std::string>();
  ANGLE_CHECK(format == "A" || format == "B" || format == "C", "--format '", format, "': expected A, B or C");
  ANGLE_CHECK(dtype == "bf16" || dtype == "fp32", "--dtype '", dtype, "': expected bf16 or fp32");
  ANGLE_CHECK(vm.count("flops"), "--project needs --flops: the model FLOP/s one accelerator achieves");
  const int64_t chunk = vm["chunk"].as<int64_t>();
  ANGLE_CHECK(chunk >= 0, "--chunk ", chunk, ": must be 0 (no gradient caching) or positive");
  const plan::UniformBatch batch{positive_int(vm, "global-batch"), positive_int(vm, "tokens"), format == "C" ? 3 : 2, chunk};
  plan::ShardSettings shard;
  shard.stage = vm["stage"].as<int>();
  ANGLE_CHECK(shard.stage >= 1 && shard.stage <= 3, "--stage ", shard.stage, ": expected 1, 2 or 3");
  shard.ranks = ranks;
  shard.param_bytes = shard.reduce_bytes = dtype == "bf16" ? 2 : 4;
  Outcome o;
  o.subject = config, o.ranks = ranks, o.stage = shard.stage, o.rows_per_example = batch.rows_per_example, o.step = 1;
  o.shape = &shape;
  o.state = plan::state_peak(shape, shard);
  // One accelerator per rank; NCCL moves data beside the kernels and reduces along a ring; the
  // optimizer and the parameter copies are bound by the accelerator's memory bandwidth (AdamW
  // reads and writes about 36 bytes per fp32 parameter, a copy 2 per byte).
  plan::Machine device;
  device.comm_on_cores = false, device.ring_reduce = true;
  const double hbm = positive("--hbm", vm["hbm"].as<double>()) * 1e9;
  device.optimizer_s_per_param = 36 / hbm, device.copy_bytes_per_s = hbm / 2, device.async_latency_s = 0;
  o.machine = machine_from(vm, ranks, device);
  o.machine.cores = o.machine.ranks_per_node;
  o.machine_label = "accelerator, " + std::to_string(o.machine.ranks_per_node) + " per node";
  const plan::CommBytes step = plan::uniform_step(shape, shard, batch);
  o.comm = step;
  o.activation_rows = step.activation_rows;
  o.runtime_label = "reserved";
  o.peak = plan::peak_bytes(shape, shard, static_cast<int64_t>(vm["reserve-gb"].as<double>() * 1e9),
                            step.activation_bytes, step.loss_bytes);
  // The weights reach the accelerator shard by shard from host memory; nothing of them stays.
  o.peak.load = o.peak.retained = 0;
  Work work;
  work.add(step, true);
  work.node_flops = (step.forward_flops + step.backward_flops) * static_cast<double>(std::min(o.machine.ranks_per_node, ranks));
  o.time = time_at(o, ranks, 1, step, work, shard.param_bytes);
  plan::ShardSettings single = shard;
  single.ranks = 1;
  Work one;
  one.add(plan::uniform_step(shape, single, batch), true);
  o.time1 = time_at(o, 1, 1, one.slowest, one, shard.param_bytes);
  if (vm.count("examples"))
    o.steps_per_epoch = std::ceil(static_cast<double>(positive_int(vm, "examples")) / static_cast<double>(batch.global_batch));
  return report(o, vm);
}

}  // namespace

int run_plan(const std::vector<std::string>& args) {
  // Job-key overrides (--section.key value) go to the job; the rest are the plan's own options.
  std::vector<std::string> own, overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool job_key = args[i].rfind("--", 0) == 0 && args[i].find('.') != std::string::npos;
    (job_key ? overrides : own).push_back(args[i]);
    if (job_key && args[i].find('=') == std::string::npos && i + 1 < args.size()) overrides.push_back(args[++i]);
  }
  po::options_description options("plan");
  options.add_options()
      ("job", po::value<std::string>(), "job file (as for angle train); --section.key value overrides")
      ("ranks", po::value<int64_t>()->default_value(1), "number of ranks N")
      ("step", po::value<long>()->default_value(2), "optimizer step whose data sets the data-dependent bytes "
                                                      "(communication and time: step S; peak memory: steps 1..S)")
      ("memory-gb", po::value<double>(), "memory per rank (GB): does the peak fit, how many examples per forward do")
      ("calibrate", po::value<std::string>(), "measure this machine (FLOP/s of one thread on the job's model and "
                                               "data; alpha/beta when run on several ranks) into FILE.json, then exit")
      ("machine", po::value<std::string>(), "a calibration FILE.json (from --calibrate)")
      ("flops", po::value<double>(), "achieved model FLOP/s of one thread, or with --project of one accelerator")
      ("link", po::value<std::string>(), "intra=GB/s[,inter=GB/s][,latency=us]: link bandwidths (per direction) "
                                         "within and across nodes, and the latency per message")
      ("per-node", po::value<int64_t>(), "ranks per node (default: all N on one node)")
      ("cores", po::value<int64_t>(), "cores per node (default: the machine file's, else this machine's)")
      ("json", po::bool_switch(), "print one JSON object instead of the table");
  po::options_description projection("projection (a model by its config.json alone, uniform data, one accelerator per rank)");
  projection.add_options()
      ("project", po::value<std::string>(), "config.json of a BERT or LLaMA-family (llama, mistral, qwen2) model")
      ("global-batch", po::value<int64_t>()->default_value(1024), "examples per optimizer step")
      ("tokens", po::value<int64_t>()->default_value(256), "tokens per text, special tokens included")
      ("format", po::value<std::string>()->default_value("A"), "A/B (2 texts per example) or C (3)")
      ("chunk", po::value<int64_t>()->default_value(0), "gradient caching: examples per forward pass (0: none)")
      ("lora", po::value<int64_t>()->default_value(0), "LoRA rank on the decoder's 7 projections (0: full fine-tuning)")
      ("stage", po::value<int>()->default_value(3), "sharding stage 1, 2 or 3")
      ("dtype", po::value<std::string>()->default_value("bf16"), "parameter and reduction dtype: bf16 or fp32")
      ("hbm", po::value<double>()->default_value(3350), "accelerator memory bandwidth, GB/s (optimizer, copies)")
      ("reserve-gb", po::value<double>()->default_value(0), "memory per accelerator taken before training (runtime, "
                                                            "communication buffers), GB")
      ("examples", po::value<int64_t>(), "examples per epoch (for the epoch time)");
  options.add(projection);
  auto vm = parse("plan", "--job FILE.ini --ranks N [options] [--section.key value ...]\n"
                  "       angle plan --project config.json --ranks N --flops F [--lora R] [options]\n"
                  "       mpirun -np 2 angle plan --job FILE.ini --calibrate machine.json", options, own);
  if (!vm) return 0;
  ANGLE_CHECK(vm->count("job") + vm->count("project") == 1, "plan needs either --job FILE.ini or --project config.json");
  if (vm->count("calibrate")) {
    ANGLE_CHECK(vm->count("job"), "--calibrate needs --job: it measures the job's model on its data");
    auto job = train::parse_job((*vm)["job"].as<std::string>(), overrides);
    std::unique_ptr<comm::Comm> comm = comm::make_comm(job->backend);
    const plan::Machine machine = plan::calibrate(*job, *comm);
    if (comm->rank() == 0) {
      plan::save_machine(machine, (*vm)["calibrate"].as<std::string>());
      std::cout << "calibrated on " << comm->size() << " rank(s): " << machine.flops_per_thread / 1e9
                << " GFLOP/s per thread, alpha " << machine.alpha_s * 1e6 << " us, beta "
                << machine.beta_bytes_per_s / 1e9 << " GB/s, " << machine.cores << " cores -> "
                << (*vm)["calibrate"].as<std::string>() << "\n";
    }
    comm->barrier();
    return 0;
  }
  const int64_t ranks = (*vm)["ranks"].as<int64_t>();
  ANGLE_CHECK(ranks >= 1, "--ranks ", ranks, ": must be at least 1");
  if (vm->count("project")) {
    ANGLE_CHECK(overrides.empty(), "--project takes no job keys (", overrides.front(), ")");
    return plan_projection(*vm, ranks);
  }
  const long step = (*vm)["step"].as<long>();
  ANGLE_CHECK(step >= 1, "--step ", step, ": must be at least 1");
  return plan_job(*vm, overrides, ranks, step);
}

}  // namespace angle::cli
