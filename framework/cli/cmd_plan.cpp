#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "model/encoder.h"
#include "plan/comm_plan.h"
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
      ("ranks", po::value<int64_t>()->required(), "number of ranks N")
      ("step", po::value<long>()->default_value(2), "optimizer step whose data sets the data-dependent bytes")
      ("memory-gb", po::value<double>(), "memory per rank (GB) to check the model state against")
      ("json", po::bool_switch(), "print one JSON object instead of the table");
  auto vm = parse("plan", "--job FILE.ini --ranks N [options] [--section.key value ...]", options, own);
  if (!vm) return 0;
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
  plan::CommSetup setup{&*job, &shape, &data, shard, tokenizer.encode("", max_length), tokenizer.pad_id()};
  const plan::CommBytes comm = plan::step_comm_bytes(setup, 0, step);

  nlohmann::json j = {{"ranks", ranks}, {"stage", shard.stage}, {"parameters", shape.numel()},
                      {"state_bytes", {{"params", state.params}, {"grads", state.grads}, {"optim", state.optim},
                                       {"total", state.total()}}},
                      {"comm_bytes", {{"step", step}, {"rank", 0}, {"total", comm.total()}}}};
  for (const auto& [phase, bytes] : comm.by_phase) j["comm_bytes"][phase] = bytes;
  std::optional<bool> fits;
  if (vm->count("memory-gb")) {
    const double limit = (*vm)["memory-gb"].as<double>() * 1e9;
    fits = static_cast<double>(state.total()) <= limit;
    j["memory_limit_bytes"] = limit;
    j["state_fits"] = *fits;
  }
  if ((*vm)["json"].as<bool>()) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "plan: " << job->job_file << " on " << ranks << " rank(s), stage " << shard.stage << ", "
            << shape.numel() << " parameters\n"
            << "model state per rank (peak): parameters " << mib(state.params) << ", gradients " << mib(state.grads)
            << ", optimizer " << mib(state.optim) << ", total " << mib(state.total()) << "\n"
            << "communication of rank 0 in step " << step << ": " << mib(static_cast<int64_t>(comm.total()));
  for (const auto& [phase, bytes] : comm.by_phase) std::cout << ", " << phase << " " << mib(static_cast<int64_t>(bytes));
  std::cout << "\n";
  if (fits) std::cout << "model state " << (*fits ? "fits" : "does NOT fit") << " in " << (*vm)["memory-gb"].as<double>()
                      << " GB per rank\n";
  return 0;
}

}  // namespace angle::cli
