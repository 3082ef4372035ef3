#include "plan/projection.h"

#include <algorithm>

#include "core/error.h"
#include "plan/activation_plan.h"

namespace angle::plan {

namespace {

// The optimizer step's calls, as rank_step_cost counts them, over the units that train.
void add_uniform_step_calls(std::vector<Call>& calls, const model::ModelShape& shape, const ShardSettings& s) {
  const int64_t g = s.group();
  auto add = [&](const char* phase, const char* op, int64_t bytes, Among among) {
    calls.push_back({phase, op, static_cast<uint64_t>(bytes), among});
  };
  for (const model::UnitShape& u : shape.units) {
    const int64_t shard = (u.numel() + g - 1) / g;
    if (s.stage == 1 && (s.ranks > 1 || s.reduce_bytes != 4) && u.numel() > 0) {
      add("step", "reduce_scatter", shard * g * s.reduce_bytes, Among::shard);
      if (s.replicas > 1) add("step", "all_reduce", shard * s.reduce_bytes, Among::replica);
    }
  }
  add("step", "all_reduce", 8, Among::shard);
  for (const model::UnitShape& u : shape.units)  // gathered again, during the next forward
    if (s.stage < 3 && u.numel() > 0 && !s.rows_only(u))
      add("forward", "all_gather", (u.numel() + g - 1) / g * s.param_bytes, Among::shard);
  if (s.ranks > 1) add("step", "all_reduce", 8, Among::world);
}

}  // namespace

StepCost uniform_step_cost(const model::ModelShape& shape, const ShardSettings& s, const UniformBatch& batch) {
  const int64_t n = s.ranks, k = batch.rows_per_example, h = shape.hidden, length = batch.tokens;
  ANGLE_CHECK(batch.global_batch > 0 && batch.global_batch % n == 0, "global batch ", batch.global_batch,
              " must be a positive multiple of the ranks ", n);
  const int64_t examples = batch.global_batch / n, rows = k * examples, tokens = rows * length;
  // Gradient caching: forward passes of `chunk` examples, each run twice (without and with a
  // graph), one backward per chunk.
  const int64_t chunk = batch.chunk > 0 ? std::min(batch.chunk, examples) : examples;
  const int64_t chunks = (examples + chunk - 1) / chunk, chunk_tokens = k * chunk * length;
  const int64_t g = s.group();  // the ranks that shard one copy (shard.replicate)
  const int64_t unique = std::min(shape.vocab, chunk_tokens), unique_all = std::min(shape.vocab, g * chunk_tokens);
  StepCost out;
  auto add = [&](const char* phase, const char* op, int64_t bytes, Among among = Among::world) {
    out.calls.push_back({phase, op, static_cast<uint64_t>(bytes), among});
  };
  auto gather = [&](const char* phase, int64_t bytes, Among among = Among::world) {  // rows
    out.calls.push_back({phase, "all_gather", static_cast<uint64_t>(bytes), among, true});
  };
  auto shard_of = [&](int64_t numel) { return (numel + g - 1) / g; };
  const model::UnitShape& words = shape.units.front();  // looked up by rows
  // Batch: the duplicate filter's exchange.
  gather("batch", 8), gather("batch", 8 * (k + 1) * examples);
  // Forward: stages 2, 3 look up the word-embedding rows; stage 3 gathers every other unit.
  auto forward = [&]() {
    if (s.stage < 2) return;
    gather("forward", 8, Among::shard), gather("forward", 8 * unique, Among::shard);
    add("forward", "all_reduce", unique_all * h * s.param_bytes, Among::shard);
    if (s.stage == 3) add_stage3_gathers(out.calls, shape, s, false);
  };
  // Backward: stages 2/3 reduce-scatter each bucket of trainable dense gradients (with replicas,
  // then all-reduce the piece across them) and gather the word-embedding rows' gradients (when
  // they train); stage 3 gathers the units again (all but the last).
  const std::vector<GradientBucket> buckets = gradient_buckets(shape, s, 0);
  auto backward = [&]() {
    if (s.stage < 2) return;
    for (const GradientBucket& b : buckets)
      if (!s.adds_locally()) {
        add("backward", "reduce_scatter", static_cast<int64_t>(b.send), Among::shard);
        if (s.replicas > 1) add("backward", "all_reduce", static_cast<int64_t>(b.piece), Among::replica);
      }
    if (s.stage == 3) add_stage3_gathers(out.calls, shape, s, true);
    if (words.numel() > 0 && !s.adds_locally()) {  // as rank_step_cost: rows all-gathered, or a dense matrix
      const int64_t word_rows = unique_all;  // those the group looked up
      gather("backward", 8);
      if (n * word_rows < shape.vocab) {
        gather("backward", 8 * word_rows);
        gather("backward", word_rows * h * s.reduce_bytes);
      } else {
        out.dense_words = true;
        add("backward", "reduce_scatter", shard_of(words.numel()) * g * s.reduce_bytes, Among::shard);
        if (s.replicas > 1) add("backward", "all_reduce", shard_of(words.numel()) * s.reduce_bytes, Among::replica);
      }
    }
  };
  auto loss = [&]() {
    if (n > 1) gather("loss", rows * h * 4);
    gather("loss", examples * 4);
  };
  if (batch.chunk == 0) {
    forward(), loss(), backward();
  } else {
    for (int64_t i = 0; i < chunks; ++i) forward();
    loss();
    for (int64_t i = 0; i < chunks; ++i) forward(), backward();
  }
  add_uniform_step_calls(out.calls, shape, s);
  const double t = static_cast<double>(tokens), squares = static_cast<double>(rows * length * length);
  const double total = shape.train_flops(t, squares);
  const double forward_flops = 2.0 * static_cast<double>(shape.matmul_weights()) * t +
                               (total - shape.train_flops(t, 0)) / 3;  // attention: a third in forward
  out.forward_flops = forward_flops * (batch.chunk > 0 ? 2 : 1);
  out.backward_flops = total - forward_flops;
  out.rows_per_forward = static_cast<double>(k * chunk);
  // Adapter dropout as angle-emb's default (0.1); in bf16 decoders as transformers runs them.
  out.activation_bytes = activation_bytes(shape, {k * chunk, length, chunk_tokens, false, shape.lora_rank > 0,
                                                  s.param_bytes == 2});
  out.activation_rows = k * chunk;
  out.loss_bytes = loss_bytes(shape, n * rows, n * rows);
  return out;
}

}  // namespace angle::plan
