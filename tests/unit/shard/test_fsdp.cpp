// The sharder at one rank against plain LibTorch training: torch::optim::AdamW (decoupled decay
// on two parameter groups, as HF) with torch::nn::utils::clip_grad_norm_, on the model's own
// parameters and dense gradients. Every stage must give the same parameters after 20 steps.
#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "comm/comm.h"
#include "model/bert.h"
#include "shard/fsdp.h"
#include "tiny_model.h"

using namespace angle;

namespace {

model::BertConfig tiny_bert() {
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"), testing::tiny_config_json().dump());
  model::BertConfig c = model::BertConfig::from_file(dir.file("config.json"));
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0;
  return c;
}

bool decays(const std::string& name) { return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos); }

// A batch of random token ids with random lengths (right padding), the same for both models.
std::pair<at::Tensor, at::Tensor> batch(int step) {
  at::manual_seed(100 + step);
  at::Tensor ids = at::randint(5, 24, {6, 10}, at::kLong);
  at::Tensor lengths = at::randint(3, 11, {6, 1}, at::kLong);
  at::Tensor mask = (at::arange(10, at::kLong).unsqueeze(0) < lengths).to(at::kLong);
  return {ids * mask, mask};
}

at::Tensor objective(const at::Tensor& hidden, const at::Tensor& mask) {
  at::Tensor m = mask.unsqueeze(-1).to(hidden.dtype());
  return ((hidden * m).sum(1) / m.sum(1)).to(at::kFloat).pow(2).sum() * 5;  // large enough to be clipped
}

// A tiny model sharded at one rank, at stage 3 with the given dtype.
struct Stage3 {
  model::BertModel model{tiny_bert()};
  std::unique_ptr<comm::Comm> comm = comm::make_comm("single");
  std::unique_ptr<shard::ShardedModel> sharded;
  explicit Stage3(at::ScalarType dtype = at::kFloat) {
    model.train(true);
    shard::ShardOptions options;
    options.stage = 3;
    options.param_dtype = options.reduce_dtype = dtype;
    sharded = std::make_unique<shard::ShardedModel>(model, *comm, options, decays);
  }
};

double relative_distance(const model::BertModel& a, const model::BertModel& b) {
  double delta = 0, norm = 0;
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    delta += (pa[i].second.to(at::kDouble) - pb[i].second.to(at::kDouble)).pow(2).sum().item<double>();
    norm += pb[i].second.to(at::kDouble).pow(2).sum().item<double>();
  }
  return std::sqrt(delta / norm);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fsdp)

BOOST_AUTO_TEST_CASE(every_stage_at_one_rank_equals_torch_adamw_with_clipping) {
  const double lr = 3e-3, clip = 0.5;
  const shard::AdamWOptions adam{0.9, 0.98, 1e-6, 0.01};
  for (int stage : {1, 2, 3}) {
    at::manual_seed(1);
    model::BertModel sharded_model(tiny_bert()), reference(tiny_bert());
    {
      torch::NoGradGuard no_grad;
      auto from = sharded_model.named_parameters(), to = reference.named_parameters();
      for (size_t i = 0; i < from.size(); ++i) to[i].second.copy_(from[i].second);
    }
    sharded_model.train(true), reference.train(true);
    auto comm = comm::make_comm("single");
    shard::ShardOptions options;
    options.stage = stage;
    options.adam = adam;
    shard::ShardedModel sharded(sharded_model, *comm, options, decays);

    std::vector<at::Tensor> with_decay, without_decay;
    for (auto& [name, p] : reference.named_parameters()) (decays(name) ? with_decay : without_decay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto group_options = [&](double decay) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(lr);
      o->betas({adam.beta1, adam.beta2}).eps(adam.eps).weight_decay(decay);
      return o;
    };
    groups.emplace_back(with_decay, group_options(adam.weight_decay));
    groups.emplace_back(without_decay, group_options(0));
    torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(lr));

    double worst_norm_gap = 0;
    for (int step = 1; step <= 20; ++step) {
      auto [ids, mask] = batch(step);
      objective(sharded_model.forward(ids, mask, &sharded), mask).backward();
      sharded.finish_backward();
      const double norm = sharded.step(lr, clip);

      optimizer.zero_grad();
      objective(reference.forward(ids, mask), mask).backward();
      std::vector<at::Tensor> all = with_decay;
      all.insert(all.end(), without_decay.begin(), without_decay.end());
      const double reference_norm = torch::nn::utils::clip_grad_norm_(all, clip);
      optimizer.step();
      BOOST_TEST(reference_norm > clip, "the test must exercise clipping (norm " << reference_norm << ")");
      worst_norm_gap = std::max(worst_norm_gap, std::abs(norm - reference_norm) / reference_norm);
    }
    sharded.gather_full();
    const double distance = relative_distance(sharded_model, reference);
    BOOST_TEST_MESSAGE("stage " << stage << ": parameters differ by " << distance << " (norm-relative), gradient norms by "
                                << worst_norm_gap);
    BOOST_TEST(distance <= 1e-6, "stage " << stage << ": " << distance);
    BOOST_TEST(worst_norm_gap <= 1e-6);
    // The model did move: the comparison is not between two untouched copies.
    model::BertModel initial(tiny_bert());
    BOOST_TEST(relative_distance(sharded_model, initial) > 1e-3);
  }
}

BOOST_AUTO_TEST_CASE(bf16_parameters_keep_an_fp32_master_and_track_fp32_training) {
  std::vector<double> losses[2];
  for (int bf16 : {0, 1}) {
    at::manual_seed(1);
    Stage3 s(bf16 ? at::kBFloat16 : at::kFloat);
    model::BertModel& m = s.model;
    shard::ShardedModel& sharded = *s.sharded;
    for (int step = 1; step <= 5; ++step) {
      auto [ids, mask] = batch(step);
      at::Tensor hidden = m.forward(ids, mask, &sharded);
      BOOST_TEST((hidden.scalar_type() == (bf16 ? at::kBFloat16 : at::kFloat)));
      at::Tensor loss = objective(hidden, mask);
      losses[bf16].push_back(loss.item<double>());
      loss.backward();
      sharded.step(1e-3, 1.0);
    }
    BOOST_TEST((sharded.owned("params").scalar_type() == at::kFloat));
  }
  for (size_t i = 0; i < losses[0].size(); ++i)
    BOOST_TEST(std::abs(losses[1][i] - losses[0][i]) <= 0.03 * std::abs(losses[0][i]), "step " << i + 1);
}

BOOST_AUTO_TEST_CASE(stage_three_frees_units_and_counts_what_it_holds) {
  at::manual_seed(1);
  Stage3 s;
  model::BertModel& m = s.model;
  shard::ShardedModel& sharded = *s.sharded;
  // Between steps only the master copy is held as parameters; the model's own tensors are empty.
  const int64_t numel = sharded.numel();
  BOOST_TEST(sharded.memory().live(shard::MemoryLedger::kParams) == 4 * numel);
  BOOST_TEST(sharded.memory().live(shard::MemoryLedger::kOptim) == 8 * numel);
  for (auto& [name, p] : m.named_parameters()) BOOST_TEST(p.numel() == 0, name);
  auto [ids, mask] = batch(1);
  objective(m.forward(ids, mask, &sharded), mask).backward();
  sharded.step(1e-3, 1.0);
  BOOST_TEST(sharded.memory().live(shard::MemoryLedger::kParams) == 4 * numel);
  // Peak: the master plus at most two gathered units (here the whole model is 4 units).
  BOOST_TEST(sharded.memory().at_peak(shard::MemoryLedger::kParams) < 4 * numel + 4 * numel);
  sharded.gather_full();
  for (auto& [name, p] : m.named_parameters()) BOOST_TEST(p.numel() > 0, name);
  sharded.release_full();
  BOOST_TEST(sharded.memory().live(shard::MemoryLedger::kParams) == 4 * numel);
}

BOOST_AUTO_TEST_CASE(bad_options_are_errors_before_any_work) {
  model::BertModel m(tiny_bert());
  auto comm = comm::make_comm("single");
  shard::ShardOptions options;
  options.stage = 4;
  BOOST_TEST(testing::error_of([&] { shard::ShardedModel s(m, *comm, options, decays); }).find("shard.stage 4") !=
             std::string::npos);
  options.stage = 3;
  // 1 KiB: dense parameters of 2 KiB (32 x 16 fp32: the position embeddings, the layers' MLP
  // matrices) do not fit a bucket; the word embeddings' rows are not bucketed.
  options.bucket_mb = 1.0 / 1024;
  const std::string message = testing::error_of([&] { shard::ShardedModel s(m, *comm, options, decays); });
  BOOST_TEST(message.find("shard.bucket_mb = 0.000976") != std::string::npos, message);
  BOOST_TEST(message.find("is below the gradient of '") != std::string::npos, message);
  BOOST_TEST(message.find("embeddings.word_embeddings") == std::string::npos, message);
  options.bucket_mb = 0;
  options.replicate = "3";  // one rank: 3 replicas cannot divide it
  BOOST_TEST(testing::error_of([&] { shard::ShardedModel s(m, *comm, options, decays); })
                 .find("shard.replicate = 3 does not divide the 1 ranks") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
