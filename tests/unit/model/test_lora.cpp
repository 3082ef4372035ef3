// LoRA (model/lora.h) against closed forms on a tiny random decoder built in memory: the adapted
// projection is W x + b + (alpha / r) B A x, fresh adapters are peft's (B = 0, A bounded by
// 1/sqrt(in)) whatever the rank that draws them, merging folds exactly that update into W, the base
// is frozen, and the target list is checked.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <boost/test/unit_test.hpp>

#include "model/decoder.h"
#include "model/lora.h"
#include "tiny_model.h"

using namespace angle;

namespace {

model::DecoderConfig tiny_decoder() {
  model::DecoderConfig c;
  c.model_type = "llama";
  c.vocab_size = 32, c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 2, c.num_key_value_heads = 1, c.head_dim = 8, c.max_position_embeddings = 32;
  c.source = "test";
  return c;
}

model::LoraConfig adapters(std::vector<std::string> targets = model::LoraConfig::all_projections()) {
  model::LoraConfig l;
  l.r = 4, l.alpha = 8, l.dropout = 0, l.target_modules = std::move(targets);
  return l;
}

// Random values in every parameter (the adapters included), so that each term counts.
void randomize(model::Backbone& m, uint64_t seed) {
  c10::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (auto& [name, p] : m.named_parameters()) p.copy_(at::randn(p.sizes()) * 0.3);
}

at::Tensor param(const model::Backbone& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  BOOST_FAIL("no parameter " + name);
  return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lora)

BOOST_AUTO_TEST_CASE(adapted_forward_is_the_base_plus_scaled_low_rank_update) {
  // The same random base twice; the adapted model's projections differ by exactly (alpha/r) B A x,
  // so folding that update into W (merged_parameters) gives the plain model the same output.
  model::DecoderModel adapted(tiny_decoder(), adapters()), plain(tiny_decoder());
  randomize(adapted, 3);
  c10::NoGradGuard no_grad;
  for (auto& [name, merged] : model::merged_parameters(adapted, adapters())) param(plain, name).copy_(merged);
  const at::Tensor ids = at::randint(0, 32, {3, 7}, at::kLong), mask = at::ones({3, 7}, at::kLong);
  const double diff = (adapted.forward(ids, mask) - plain.forward(ids, mask)).abs().max().item<double>();
  BOOST_TEST(diff < 1e-5);
  // The closed form of one projection, against lora_delta.
  const at::Tensor x = at::randn({5, 16}), a = param(adapted, "layers.0.self_attn.q_proj.lora_A.weight"),
                   b = param(adapted, "layers.0.self_attn.q_proj.lora_B.weight");
  BOOST_TEST(at::allclose(model::lora_delta(x, a, b, 2.0), at::mm(at::mm(x, a.t()), b.t()) * 2.0, 1e-5, 1e-6));
  // The adapters do change the output (a merged model that ignored them would pass above too).
  model::DecoderModel base_only(tiny_decoder());
  for (auto& [name, p] : base_only.named_parameters()) p.copy_(param(adapted, name));
  BOOST_TEST((adapted.forward(ids, mask) - base_only.forward(ids, mask)).abs().max().item<double>() > 1e-2);
}

BOOST_AUTO_TEST_CASE(base_frozen_adapters_trainable_only_where_targeted) {
  model::DecoderModel m(tiny_decoder(), adapters({"q_proj", "down_proj"}));
  size_t count = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    const bool adapter = model::is_adapter_param(name);
    BOOST_TEST(p.requires_grad() == adapter, name);
    if (adapter) {
      ++count;
      BOOST_TEST((name.find("q_proj") != std::string::npos || name.find("down_proj") != std::string::npos), name);
    }
  }
  BOOST_TEST(count == 2u * 2u * 2u);  // 2 layers x 2 projections x (A, B)
}

BOOST_AUTO_TEST_CASE(fresh_adapters_are_peft_init_and_the_same_for_every_caller) {
  model::DecoderModel one(tiny_decoder(), adapters()), two(tiny_decoder(), adapters());
  at::manual_seed(1);  // the global generator must not matter (ranks seed it differently)
  model::init_adapters(one, 42);
  at::manual_seed(2);
  model::init_adapters(two, 42);
  for (const auto& [name, p] : one.named_parameters()) {
    if (!model::is_adapter_param(name)) continue;
    BOOST_TEST(at::equal(p, param(two, name)), name);
    if (name.ends_with("lora_B.weight")) BOOST_TEST(p.abs().max().item<float>() == 0.f, name);
    if (name.ends_with("lora_A.weight")) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(p.size(1)));
      BOOST_TEST(p.abs().max().item<double>() <= bound, name);
      BOOST_TEST(p.abs().max().item<double>() > 0.8 * bound, name);  // spread over the interval
    }
  }
}

BOOST_AUTO_TEST_CASE(target_lists_are_checked_and_ordered) {
  const auto targets = model::parse_target_modules("down_proj, q_proj,q_proj", "test");
  BOOST_TEST((targets == std::vector<std::string>{"q_proj", "down_proj"}));
  BOOST_TEST(model::parse_target_modules("all", "test").size() == 7u);
  const std::string message = testing::error_of([] { model::parse_target_modules("q_proj,c_attn", "job.ini"); });
  BOOST_TEST(message.find("job.ini") != std::string::npos);
  BOOST_TEST(message.find("'c_attn' matches no projection") != std::string::npos);
  BOOST_TEST(!testing::error_of([] { model::parse_target_modules("", "x"); }).empty());
}

BOOST_AUTO_TEST_SUITE_END()
