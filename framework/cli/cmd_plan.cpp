#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "plan/calibrate.h"
#include "plan/planner.h"
#include "train/job_config.h"

namespace angle::cli {
namespace {

template <typename T>
std::optional<T> optional_value(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? std::optional<T>(vm[name].as<T>()) : std::nullopt;
}

plan::MachineOptions machine_options(const po::variables_map& vm) {
  return {optional_value<std::string>(vm, "machine"), optional_value<double>(vm, "flops"),
          optional_value<int64_t>(vm, "cores"), optional_value<int64_t>(vm, "per-node"),
          optional_value<std::string>(vm, "link")};
}

plan::ProjectionOptions projection_options(const po::variables_map& vm, int64_t ranks) {
  plan::ProjectionOptions o;
  o.config = vm["project"].as<std::string>(), o.ranks = ranks;
  o.global_batch = vm["global-batch"].as<int64_t>(), o.tokens = vm["tokens"].as<int64_t>();
  o.format = vm["format"].as<std::string>(), o.chunk = vm["chunk"].as<int64_t>(), o.lora = vm["lora"].as<int64_t>();
  o.stage = vm["stage"].as<int>(), o.dtype = vm["dtype"].as<std::string>();
  o.replicate = vm["replicate"].as<std::string>(), o.bucket_mb = vm["bucket-mb"].as<double>();
  o.hbm_gb_s = vm["hbm"].as<double>(), o.reserve_gb = vm["reserve-gb"].as<double>();
  o.examples = optional_value<int64_t>(vm, "examples");
  o.machine = machine_options(vm), o.memory_gb = optional_value<double>(vm, "memory-gb");
  return o;
}

int print(const plan::PlanReport& report, const po::variables_map& vm) {
  if (vm["json"].as<bool>()) std::cout << plan::report_json(report) << "\n";
  else plan::print_report(std::cout, report);
  return 0;
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
  const plan::JobPlanOptions job_defaults;
  const plan::ProjectionOptions defaults;
  po::options_description options("plan");
  options.add_options()
      ("job", po::value<std::string>(), "job file (as for angle train); --section.key value overrides")
      ("ranks", po::value<int64_t>()->default_value(job_defaults.ranks), "number of ranks N")
      ("step", po::value<long>()->default_value(job_defaults.step), "optimizer step whose data sets the data-dependent "
                                                      "bytes (communication and time: step S; peak memory: steps 1..S)")
      ("memory-gb", po::value<double>(), "memory per rank (GB): does the peak fit, how many examples per forward do")
      ("calibrate", po::value<std::string>(), "measure this machine (FLOP/s of one thread on the job's model and "
                                               "data; alpha/beta when run on several ranks) into FILE.json, then exit")
      ("machine", po::value<std::string>(), "a calibration FILE.json (from --calibrate)")
      ("flops", po::value<double>(), "achieved model FLOP/s of one thread, or with --project of one accelerator")
      ("link", po::value<std::string>(), "intra=GB/s[,inter=GB/s][,latency=us][,inter_latency=us][,inter_links=K]: "
                                         "link bandwidths (per direction) within and across nodes, the latency per "
                                         "message (across nodes too, unless inter_latency), and the links each node "
                                         "has across nodes, shared by its ranks (default: one per rank)")
      ("per-node", po::value<int64_t>(), "ranks per node (default: all N on one node)")
      ("cores", po::value<int64_t>(), "cores per node (default: the machine file's, else this machine's)")
      ("json", po::bool_switch(), "print one JSON object instead of the table");
  po::options_description projection("projection (a model by its config.json alone, uniform data, one accelerator per rank)");
  projection.add_options()
      ("project", po::value<std::string>(), "config.json of a BERT or LLaMA-family (llama, mistral, qwen2) model")
      ("global-batch", po::value<int64_t>()->default_value(defaults.global_batch), "examples per optimizer step")
      ("tokens", po::value<int64_t>()->default_value(defaults.tokens), "tokens per text, special tokens included")
      ("format", po::value<std::string>()->default_value(defaults.format), "A/B (2 texts per example) or C (3)")
      ("chunk", po::value<int64_t>()->default_value(defaults.chunk), "gradient caching: examples per forward pass (0: none)")
      ("lora", po::value<int64_t>()->default_value(defaults.lora), "LoRA rank on the decoder's 7 projections (0: full fine-tuning)")
      ("stage", po::value<int>()->default_value(defaults.stage), "sharding stage 1, 2 or 3")
      ("dtype", po::value<std::string>()->default_value(defaults.dtype), "parameter and reduction dtype: bf16 or fp32")
      ("replicate", po::value<std::string>()->default_value(defaults.replicate),
       "hybrid sharding: 1 (shard over all ranks), node (shard within each node, one replica per node) or K replicas")
      ("bucket-mb", po::value<double>()->default_value(defaults.bucket_mb),
       "gradient buckets of at most this many MiB (0: one per unit), as shard.bucket_mb")
      ("hbm", po::value<double>()->default_value(defaults.hbm_gb_s), "accelerator memory bandwidth, GB/s (optimizer, copies)")
      ("reserve-gb", po::value<double>()->default_value(defaults.reserve_gb), "memory per accelerator taken before "
                                                            "training (runtime, communication buffers), GB")
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
    plan::calibrate_into(*job, (*vm)["calibrate"].as<std::string>(), std::cout);
    return 0;
  }
  const int64_t ranks = (*vm)["ranks"].as<int64_t>();
  ANGLE_CHECK(ranks >= 1, "--ranks ", ranks, ": must be at least 1");
  if (vm->count("project")) {
    ANGLE_CHECK(overrides.empty(), "--project takes no job keys (", overrides.front(), ")");
    return print(plan::plan_projection(projection_options(*vm, ranks)), *vm);
  }
  const long step = (*vm)["step"].as<long>();
  ANGLE_CHECK(step >= 1, "--step ", step, ": must be at least 1");
  return print(plan::plan_job({(*vm)["job"].as<std::string>(), overrides, ranks, step, machine_options(*vm),
                               optional_value<double>(*vm, "memory-gb")}),
               *vm);
}

}  // namespace angle::cli
