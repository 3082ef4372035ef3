#include "train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "data/sampler.h"
#include "eval/sts_eval.h"
#include "loss/angle_loss.h"
#include "core/text_file.h"
#include "data/example_source.h"
#include "train/pair_batches.h"
#include "train/schedule.h"

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

// HF Trainer's grouping: no weight decay on biases and LayerNorm weights.
std::vector<torch::optim::OptimizerParamGroup> param_groups(const model::BertModel& model, const JobConfig& c) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& [name, param] : model.named_parameters())
    (name.ends_with("bias") || name.find("LayerNorm") != std::string::npos ? no_decay : decay).push_back(param);
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr)
                                                            .betas({c.adam_beta1, c.adam_beta2})
                                                            .eps(c.adam_eps)
                                                            .weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(c.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return groups;
}

// bf16 autocast of the forward pass on the model's device, off again at scope exit.
struct Autocast {
  at::DeviceType device;
  bool on;
  Autocast(at::DeviceType d, bool enable) : device(d), on(enable) {
    if (!on) return;
    at::autocast::set_autocast_dtype(device, at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
  }
  ~Autocast() {
    if (!on) return;
    at::autocast::set_autocast_enabled(device, false);
    at::autocast::clear_cache();
  }
};

json score_json(const eval::StsScore& s) { return {{"spearman", s.spearman}, {"pearson", s.pearson}, {"n", s.n}}; }

}  // namespace

void run_training(const JobConfig& c) {
  if (c.threads) at::set_num_threads(*c.threads);
  at::manual_seed(c.seed);
  const loss::Weights weights = loss_weights(c);
  // Evaluation files are read before the model: a typo fails in a second, not after loading.
  std::optional<data::StsPairs> dev_set, test_set;
  if (!c.dev.empty()) dev_set = data::read_sts_spec(c.dev);
  if (!c.test.empty()) test_set = data::read_sts_spec(c.test);

  model::EncoderOptions options;
  options.pooling = c.pooling;
  options.max_length = c.max_length;
  options.dropout = c.dropout;
  options.device = c.device;
  model::Encoder encoder = model::load_encoder(c.model_path, options);
  model::check_exportable(encoder.pooling);

  std::vector<std::unique_ptr<data::ExampleSource>> sources;
  std::vector<uint64_t> sizes;
  for (const std::string& spec : split(c.train, ',')) {
    sources.push_back(data::open_source(spec, encoder.tokenizer, c.model_path, encoder.max_length, c.text_prompt));
    ANGLE_CHECK(sources.back()->format() == "A", spec, ": format ", sources.back()->format(),
                " cannot be trained yet (format A: text1, text2, label)");
    sizes.push_back(sources.back()->size());
  }
  std::vector<double> mix;
  if (!c.mix_weights.empty())
    for (const std::string& w : split(c.mix_weights, ',')) {
      char* end = nullptr;
      mix.push_back(std::strtod(w.c_str(), &end));
      ANGLE_CHECK(!w.empty() && *end == '\0', "data.mix_weights: '", w, "' is not a number");
    }
  const data::GlobalSampler sampler(sizes, mix, c.seed, static_cast<uint64_t>(c.global_batch));
  // Reads the examples of one global batch (run on a background thread, one batch ahead).
  auto fetch = [&](long step) {
    std::vector<data::ExampleRef> refs = sampler.global_batch(static_cast<uint64_t>(step - 1));
    std::vector<data::Example> examples(refs.size());
    for (size_t d = 0; d < sources.size(); ++d) {
      std::vector<uint64_t> indices;
      std::vector<size_t> slots;
      for (size_t i = 0; i < refs.size(); ++i)
        if (refs[i].dataset == d) indices.push_back(refs[i].index), slots.push_back(i);
      if (indices.empty()) continue;
      auto rows = sources[d]->fetch(indices);
      for (size_t k = 0; k < rows.size(); ++k) examples[slots[k]] = std::move(rows[k]);
    }
    return examples;
  };

  fs::create_directories(c.output_dir);
  std::ofstream(fs::path(c.output_dir) / "job.ini") << c.dump();
  std::ofstream metrics(fs::path(c.output_dir) / "metrics.jsonl", std::ios::trunc);
  ANGLE_CHECK(metrics.good(), c.output_dir, "/metrics.jsonl: cannot open for writing");

  const long batches_per_epoch = static_cast<long>(sampler.steps_per_epoch());
  const long total_steps = c.max_steps > 0 ? c.max_steps : c.epochs * batches_per_epoch;
  const long micro = c.global_batch / c.grad_accum;
  const long eval_every = c.eval_every > 0 ? c.eval_every : batches_per_epoch;
 log_info("train: " + std::to_string(sampler.epoch_length()) + " pairs, " + std::to_string(total_steps) + " steps of " +
           std::to_string(c.global_batch) + " pairs, pooling " + encoder.pooling.name() + ", max length " +
           std::to_string(encoder.max_length) + ", output " + c.output_dir);

  model::BertModel& model = encoder.model;
  auto groups = param_groups(model, c);
  torch::optim::AdamW optimizer(groups);
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : model.named_parameters()) params.push_back(p);

  eval::EmbedOptions eval_options{64, false};
  double best_dev = -1e9;
  long best_step = 0;
  std::future<std::vector<data::Example>> next_batch = std::async(std::launch::async, fetch, 1L);
  Progress progress("step", total_steps, 5.0);
  double window_start = now_seconds();
  long window_pairs = 0;
  model.train(true);

  for (long step = 1; step <= total_steps; ++step) {
    const long epoch = (step - 1) / batches_per_epoch;
    const double lr = c.lr * linear_schedule(step - 1, c.warmup_steps, total_steps);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

    std::vector<data::Example> examples = next_batch.get();
    if (step < total_steps) next_batch = std::async(std::launch::async, fetch, step + 1);
    std::map<std::string, double> terms;
    double step_loss = 0;
    size_t dropped = 0;
    for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(micro)) {
      std::vector<data::Example> chunk(examples.begin() + static_cast<std::ptrdiff_t>(start),
                                       examples.begin() + static_cast<std::ptrdiff_t>(
                                                              std::min(examples.size(), start + static_cast<size_t>(micro))));
      PairBatch batch = make_pair_batch(chunk, c.filter_duplicate, encoder.tokenizer.pad_id(), step);
      dropped += batch.dropped;
      at::Tensor ids = batch.tokens.input_ids.to(encoder.device), mask = batch.tokens.attention_mask.to(encoder.device);
      at::Tensor embeddings;
      {
        Autocast autocast(encoder.device.type(), c.dtype == "bf16");
        embeddings = model::pool(model.forward(ids, mask), mask, encoder.pooling);
      }
      auto value = loss::angle_objective(loss::Format::A, weights, batch.labels.to(encoder.device),
                                         embeddings.to(at::kFloat));
      const double loss_value = value.total.item<double>();
      ANGLE_CHECK(std::isfinite(loss_value), "step ", step, ": loss is ", loss_value,
                  " (not finite); lower optim.lr or check the data");
      (value.total / static_cast<double>(c.grad_accum)).backward();
      step_loss += loss_value / c.grad_accum;
      for (const auto& [k, v] : value.terms) terms[k] += v / c.grad_accum;
      window_pairs += static_cast<long>(chunk.size());
    }
    const double grad_norm = c.max_grad_norm > 0 ? torch::nn::utils::clip_grad_norm_(params, c.max_grad_norm)
                                                 : torch::nn::utils::clip_grad_norm_(params, 1e30);
    optimizer.step();
    optimizer.zero_grad();

    if (step % c.log_every == 0 || step == total_steps) {
      double now = now_seconds();
      json line = {{"step", step}, {"epoch", epoch}, {"loss", step_loss}, {"lr", lr}, {"grad_norm", grad_norm},
                   {"pairs_per_s", window_pairs / std::max(1e-9, now - window_start)},
                   {"rss_bytes", resident_bytes()}, {"dropped_duplicates", dropped}};
      for (const auto& [k, v] : terms) line[k] = v;
      metrics << line.dump() << std::endl;
      window_start = now, window_pairs = 0;
    }
    progress.update(step, step == total_steps);

    if (dev_set && (step % eval_every == 0 || step == total_steps)) {
      model.train(false);
      eval::StsScore dev = eval::evaluate_sts(encoder, *dev_set, eval_options);
      model.train(true);
      metrics << json{{"step", step}, {"dev", score_json(dev)}}.dump() << std::endl;
      log_info("step " + std::to_string(step) + ": dev spearman " + std::to_string(dev.spearman));
      if (dev.spearman > best_dev) {
        best_dev = dev.spearman, best_step = step;
        model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "best").string());
      }
    }
  }
  model.train(false);
  model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "final").string());

  json result = {{"job", c.job_file}, {"steps", total_steps}};
  if (dev_set) result["best"] = {{"step", best_step}, {"dev", {{"spearman", best_dev}}}};
  if (test_set) {
    result["final"] = {{"test", score_json(eval::evaluate_sts(encoder, *test_set, eval_options))}};
    if (dev_set) {
      model::EncoderOptions best_options;
      best_options.device = c.device;
      model::Encoder best = model::load_encoder((fs::path(c.output_dir) / "best").string(), best_options);
      result["best"]["test"] = score_json(eval::evaluate_sts(best, *test_set, eval_options));
    }
  }
  std::ofstream(fs::path(c.output_dir) / "eval.json") << result.dump(2) << "\n";
  log_info("eval: " + result.dump());
}

}  // namespace angle::train
