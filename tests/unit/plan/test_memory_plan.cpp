// The model-state accounting against published closed forms: ZeRO's 16Ψ/N bytes per rank at
// stage 3 (Rajbhandari et al. 2020, §3: fp32 master, momentum and variance 12Ψ plus 16-bit
// parameters and gradients 4Ψ; here fp32 parameters 4Ψ, gradients 4Ψ, moments 8Ψ: the same 16Ψ),
// up to the gathered units and gradients in flight; LoRA's frozen weights held whole in 16 bits
// below stage 3 (Hu et al. 2021, §4.2: GPT-3 175B trains in 350 GB = 2 bytes x 175 B); and the
// projection's closed form: no gradient traffic for frozen weights, twice the forward with
// gradient caching.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "plan/memory_plan.h"
#include "plan/projection.h"
#include "tiny_model.h"

using namespace angle;

namespace {

model::ModelShape llama(int64_t lora) {
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"),
                      nlohmann::json{{"model_type", "llama"}, {"vocab_size", 32000}, {"hidden_size", 4096},
                                     {"intermediate_size", 11008}, {"num_hidden_layers", 32},
                                     {"num_attention_heads", 32}}
                          .dump());
  model::LoraConfig adapters;
  adapters.r = lora;
  return model::decoder_shape(dir.file("config.json"), adapters);
}

int64_t largest_unit(const model::ModelShape& shape) {
  int64_t largest = 0;
  for (const model::UnitShape& u : shape.units)
    if (!u.sparse) largest = std::max(largest, u.numel() + u.frozen);
  return largest;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_plan)

BOOST_AUTO_TEST_CASE(stage3_is_zero_16_psi_over_n_plus_transients) {
  const model::ModelShape shape = llama(0);
  const double psi = static_cast<double>(shape.numel());
  for (int64_t n : {8, 64, 512}) {
    plan::ShardSettings s;
    s.stage = 3, s.ranks = n, s.param_bytes = s.reduce_bytes = 2, s.inflight_bytes = 0;
    const plan::StateBytes b = plan::state_peak(shape, s);
    // Transients: a gathered unit and the prefetched next (2 x 2 bytes), and a bucket of a layer's
    // bf16 gradient with its received piece (no other in flight: shard.inflight_mb 0 here).
    const double l = static_cast<double>(largest_unit(shape));
    const double transients = 2.0 * 2 * l + 2 * l + 2 * std::ceil(l / static_cast<double>(n));
    BOOST_TEST(static_cast<double>(b.total()) - transients == 16 * psi / static_cast<double>(n),
               boost::test_tools::tolerance(1e-4));
  }
}

BOOST_AUTO_TEST_CASE(lora_holds_frozen_weights_whole_at_stage_2_sharded_at_3) {
  const model::ModelShape shape = llama(16);
  BOOST_TEST(shape.numel() == 39976960);  // peft's count for r = 16 on the seven projections
  const double frozen = static_cast<double>(shape.frozen());
  plan::ShardSettings s;
  s.stage = 2, s.ranks = 8, s.param_bytes = s.reduce_bytes = 2;
  const plan::StateBytes two = plan::state_peak(shape, s);
  // Whole, but for the word embeddings (looked up by rows from their shard at stages 2 and 3).
  const double words = static_cast<double>(shape.units.front().frozen);
  BOOST_TEST(static_cast<double>(two.params) >= 2 * (frozen - words) + 2 * words / 8);
  BOOST_TEST(static_cast<double>(two.total()) <= 2 * frozen * 1.05);  // the frozen weights dominate
  s.stage = 3;
  const plan::StateBytes three = plan::state_peak(shape, s);
  BOOST_TEST(static_cast<double>(three.params) - 2.0 * 2 * static_cast<double>(largest_unit(shape)) - 4.0 * 39976960 / 8 ==
                 2 * frozen / 8,
             boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(projection_sends_no_gradients_of_frozen_weights_and_forwards_twice_with_caching) {
  const model::ModelShape full = llama(0), lora = llama(16);
  plan::ShardSettings s;
  s.stage = 3, s.ranks = 8, s.param_bytes = s.reduce_bytes = 2;
  const plan::UniformBatch batch{64, 128, 2, 0};
  auto bytes = [](const plan::StepCost& c, const std::string& phase, const std::string& op) {
    uint64_t total = 0;
    for (const plan::Call& call : c.calls)
      if (call.phase == phase && call.op == op) total += call.bytes;
    return total;
  };
  const plan::StepCost f = plan::uniform_step_cost(full, s, batch), l = plan::uniform_step_cost(lora, s, batch);
  // Full fine-tuning: every gradient, the word embeddings' too (8 ranks' 16384 looked-up rows
  // outnumber the vocabulary's 32000, so they go as a dense matrix).
  BOOST_TEST(bytes(f, "backward", "reduce_scatter") == 2 * static_cast<uint64_t>(full.numel()));
  BOOST_TEST(bytes(l, "backward", "reduce_scatter") == 2 * static_cast<uint64_t>(lora.numel()));
  // Gradient caching in 4 chunks: forward traffic 8 times (each chunk twice), backward 4 times.
  const plan::StepCost c = plan::uniform_step_cost(lora, s, {64, 128, 2, 2});
  const uint64_t unit_gathers = bytes(l, "forward", "all_gather") - 8 - 8 * 2 * 8 * 128;  // less the row lookup
  BOOST_TEST(bytes(c, "forward", "all_gather") == 8 * (unit_gathers + 8 + 8 * 2 * 2 * 128));
  BOOST_TEST(bytes(c, "backward", "reduce_scatter") == 4 * bytes(l, "backward", "reduce_scatter"));
  BOOST_TEST(c.forward_flops == 2 * l.forward_flops, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(c.backward_flops == l.backward_flops, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_SUITE_END()
