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
#include "model/encoder.h"
#include "comm/comm.h"
#include "core/text_file.h"
#include "plan/calibrate.h"
#include "plan/comm_plan.h"
#include "plan/time_plan.h"
#include "plan/memory_plan.h"
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
      ("job", po::value<std::string>()->required(), "job file (as for angle train); --section.key value overrides")
      ("ranks", po::value<int64_t>()->default_value(1), "number of ranks N")
      ("step", po::value<long>()->default_value(2), "optimizer step whose data sets the data-dependent bytes "
                                                      "(communication and time: step S; peak memory: steps 1..S)")
      ("memory-gb", po::value<double>(), "memory per rank (GB): does the peak fit, how many examples per forward do")
      ("calibrate", po::value<std::string>(), "measure this machine (FLOP/s of one thread on the job's model and "
                                               "data; alpha/beta when run on several ranks) into FILE.json, then exit")
      ("machine", po::value<std::string>(), "a calibration FILE.json (from --calibrate)")
      ("flops", po::value<double>(), "achieved model FLOP/s of one thread (overrides the machine file)")
      ("link", po::value<std::string>(), "intra=GB/s[,inter=GB/s][,latency=us]: link bandwidths (per direction) "
                                         "within and across nodes, and the latency per message")
      ("per-node", po::value<int64_t>(), "ranks per node (default: all N on one node)")
      ("cores", po::value<int64_t>(), "cores per node (default: the machine file's, else this machine's)")
      ("json", po::bool_switch(), "print one JSON object instead of the table");
  auto vm = parse("plan", "--job FILE.ini --ranks N [options] [--section.key value ...]\n"
                  "       mpirun -np 2 angle plan --job FILE.ini --calibrate machine.json", options, own);
  if (!vm) return 0;
  if (vm->count("calibrate")) {
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
  const long step = (*vm)["step"].as<long>();
  ANGLE_CHECK(step >= 1, "--step ", step, ": must be at least 1");
  auto job = train::parse_job((*vm)["job"].as<std::string>(), overrides);
  ANGLE_CHECK(job->global_batch % (ranks * job->grad_accum) == 0, "train.global_batch ", job->global_batch,
              " must be divisible by ranks x train.grad_accum = ", ranks, " x ", job->grad_accum);

  const model::BertConfig config = model::BertConfig::from_file(job->model_path + "/config.json");
  const plan::ModelShape shape = plan::bert_shape(config);
  text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(job->model_path);
  const size_t max_length = job->max_length.value_or(model::default_max_length(job->model_path, tokenizer, config));
  const train::TrainingData data(*job, tokenizer, max_length);

  plan::ShardSettings shard;
  shard.stage = job->stage;
  shard.ranks = ranks;
  shard.param_bytes = job->param_dtype == "bf16" ? 2 : 4;
  shard.reduce_bytes = job->reduce_dtype == "bf16" ? 2 : 4;
  shard.inflight_bytes = static_cast<int64_t>(job->inflight_mb * (1 << 20));
  const plan::StateBytes state = plan::state_peak(shape, shard);
  // What this process holds now (the runtime, the tokenizer and the job's data, as a training
  // rank does before it loads the model) is the base of the peak-RSS estimate.
  const int64_t runtime = static_cast<int64_t>(resident_bytes());
  plan::CommSetup setup{&*job, &shape, &data, shard, tokenizer.encode("", max_length), tokenizer.pad_id(),
                        job->dropout ? *job->dropout > 0
                                     : config.hidden_dropout_prob > 0 || config.attention_probs_dropout_prob > 0};

  // Time: the machine (calibrated or given), this step at N ranks and at 1 rank.
  plan::Machine machine;
  machine.cores = std::max(1u, std::thread::hardware_concurrency());
  if (vm->count("machine")) machine = plan::load_machine((*vm)["machine"].as<std::string>());
  if (vm->count("flops")) machine.flops_per_thread = positive("--flops", (*vm)["flops"].as<double>());
  if (vm->count("cores")) machine.cores = static_cast<int64_t>(positive("--cores", static_cast<double>((*vm)["cores"].as<int64_t>())));
  machine.ranks_per_node = vm->count("per-node") ? (*vm)["per-node"].as<int64_t>() : ranks;
  ANGLE_CHECK(machine.ranks_per_node >= 1, "--per-node must be at least 1");
  if (vm->count("link")) apply_link((*vm)["link"].as<std::string>(), ranks > machine.ranks_per_node, machine);
  // The rank with the most model FLOPs sets the pace of a synchronous step; the ranks sharing
  // rank 0's node share its cores.
  struct Work {
    plan::CommBytes slowest;
    double node_flops = 0;
    void add(plan::CommBytes t, bool on_rank0_node) {
      const double flops = t.forward_flops + t.backward_flops;
      if (on_rank0_node) node_flops += flops;
      if (flops > slowest.forward_flops + slowest.backward_flops) slowest = std::move(t);
    }
  };
  // Every rank in steps 1..S: the peak memory is the largest forward and loss of any of them (a
  // rank's RSS keeps its high-water mark); step S gives rank 0's traffic and the step's work.
  plan::CommBytes comm;
  Work work;
  int64_t activations = 0, activation_rows = 1, loss = 0;
  for (long s = 1; s <= step; ++s)
    for (int r = 0; r < ranks; ++r) {
      plan::CommBytes t = plan::step_comm_bytes(setup, r, s);
      if (t.activation_bytes > activations) activations = t.activation_bytes, activation_rows = t.activation_rows;
      loss = std::max(loss, t.loss_bytes);
      if (s < step) continue;
      if (r == 0) comm = t;
      work.add(std::move(t), r < machine.ranks_per_node);
    }
  const plan::PeakBytes peak = plan::peak_bytes(shape, shard, runtime, activations, loss);
  const auto time_at = [&](int64_t n, const plan::CommBytes& traffic, const Work& work) {
    plan::Machine m = machine;
    m.ranks_per_node = std::min(m.ranks_per_node, n);
    m.threads_per_rank = job->threads ? *job->threads : (n > 1 ? 1 : m.cores);
    int64_t shard_params = 0;
    for (const plan::UnitShape& u : shape.units) shard_params += (u.numel() + n - 1) / n;
    return plan::step_time(traffic, work.slowest, work.node_flops, n, m, shard_params,
                           shard.stage < 3 ? shape.numel() * shard.param_bytes : 0);
  };
  const plan::StepTime time = time_at(ranks, comm, work);
  plan::CommSetup single = setup;
  single.shard.ranks = 1;
  Work one_rank;
  one_rank.add(plan::step_comm_bytes(single, 0, step), true);
  const plan::StepTime time1 = time_at(1, one_rank.slowest, one_rank);
  const double steps_per_epoch = static_cast<double>(data.sampler().steps_per_epoch());

  nlohmann::json j = {{"ranks", ranks}, {"stage", shard.stage}, {"parameters", shape.numel()},
                      {"state_bytes", {{"params", state.params}, {"grads", state.grads}, {"optim", state.optim},
                                       {"total", state.total()}}},
                      {"peak_bytes", {{"runtime", peak.runtime}, {"load", peak.load}, {"activations", peak.activations},
                                      {"loss", peak.loss}, {"total", peak.total()}}},
                      {"comm_bytes", {{"step", step}, {"rank", 0}, {"total", comm.total()}}}};
  for (const auto& [phase, bytes] : comm.by_phase()) j["comm_bytes"][phase] = bytes;
  j["time"] = {{"compute_s", time.compute}, {"optimizer_s", time.optimizer}, {"comm_s", time.comm}, {"exposed_comm_s", time.exposed_comm},
               {"step_s", time.step()}, {"epoch_s", time.step() * steps_per_epoch}, {"step_s_one_rank", time1.step()},
               {"scaling_efficiency", time1.step() / (static_cast<double>(ranks) * time.step())},
               {"flops_per_thread", machine.flops_per_thread}, {"alpha_s", machine.alpha_s},
               {"beta_bytes_per_s", machine.beta_bytes_per_s}, {"cores", machine.cores}};
  std::optional<bool> fits;
  int64_t max_examples = 0;
  if (vm->count("memory-gb")) {
    const double limit = positive("--memory-gb", (*vm)["memory-gb"].as<double>()) * 1e9;
    fits = static_cast<double>(peak.total()) <= limit;
    j["memory_limit_bytes"] = limit;
    j["fits"] = *fits;
    j["state_fits"] = static_cast<double>(state.total()) <= limit;
    // The most examples one forward pass can take within the limit, activations scaled linearly
    // with the rows of the largest forward: the largest train.chunk, or (without caching) the
    // largest global batch.
    const int64_t k = loss::rows_per_example(data.format());
    const double room = (limit - static_cast<double>(peak.runtime + peak.state)) / plan::kHeapOverhead -
                        static_cast<double>(peak.loss);
    const double per_example = static_cast<double>(activations) / static_cast<double>(std::max<int64_t>(1, activation_rows)) * k;
    max_examples = static_cast<int64_t>(std::max(0.0, room / per_example));
    if (static_cast<double>(peak.runtime + peak.load) > limit) max_examples = 0;
    j["max_examples_per_forward"] = max_examples;
  }
  if ((*vm)["json"].as<bool>()) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "plan: " << job->job_file << " on " << ranks << " rank(s), stage " << shard.stage << ", "
            << shape.numel() << " parameters\n"
            << "model state per rank (peak): parameters " << mib(state.params) << ", gradients " << mib(state.grads)
            << ", optimizer " << mib(state.optim) << ", total " << mib(state.total()) << "\n"
            << "peak RSS per rank (estimate): " << mib(peak.total()) << " = runtime and data " << mib(peak.runtime)
            << " + max(model load " << mib(peak.load) << ", model state " << mib(peak.state) << " + " << plan::kHeapOverhead
            << " x (activations " << mib(peak.activations) << " + loss " << mib(peak.loss) << "))\n"
            << "communication of rank 0 in step " << step << ": " << mib(static_cast<int64_t>(comm.total()));
  for (const auto& [phase, bytes] : comm.by_phase()) std::cout << ", " << phase << " " << mib(static_cast<int64_t>(bytes));
  std::cout << "\n";
  std::cout << std::setprecision(3) << "time per step (rank 0): compute " << time.compute << " s, optimizer "
            << time.optimizer << " s, communication "
            << time.comm << " s of which exposed " << time.exposed_comm << " s, step " << time.step() << " s; epoch "
            << time.step() * steps_per_epoch / 60 << " min; 1 rank " << time1.step() << " s/step, scaling efficiency "
            << 100 * time1.step() / (static_cast<double>(ranks) * time.step()) << "%\n"
            << "  (machine: " << machine.flops_per_thread / 1e9 << " GFLOP/s per thread, alpha " << machine.alpha_s * 1e6
            << " us, beta " << machine.beta_bytes_per_s / 1e9 << " GB/s, " << machine.cores << " cores per node)\n";
  if (fits) {
    std::cout << "peak " << (*fits ? "fits" : "does NOT fit") << " in " << (*vm)["memory-gb"].as<double>() << " GB per rank";
    if (max_examples == 0) std::cout << "; the model alone does not fit: more ranks or a higher stage\n";
    else
      std::cout << "; at most ~" << max_examples << " examples per forward pass: train.chunk " << max_examples
                << " (gradient caching), or without it train.global_batch up to "
                << max_examples * ranks * job->grad_accum << "\n";
  }
  return 0;
}

}  // namespace angle::cli
