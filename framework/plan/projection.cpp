#include "plan/projection.h"

#include <algorithm>

#include "core/error.h"
#include "plan/activation_plan.h"

namespace angle::plan {

StepCost uniform_step_cost(const model::ModelShape& shape, const ShardSettings& s, const UniformBatch& batch) {
  const int64_t n = s.ranks, k = batch.rows_per_example, h = shape.hidden, length = batch.tokens;
  ANGLE_CHECK(batch.global_batch > 0 && batch.global_batch % n == 0, "global batch ", batch.global_batch,
              " must be a positive multiple of the ranks ", n);
  const int64_t examples = batch.global_batch / n, rows = k * examples, tokens = rows * length;
  // Gradient caching: forward passes of `chunk` examples, each run twice (without and with a
  // graph), one backward per chunk.
  const int64_t chunk = batch.chunk > 0 ? std::min(batch.chunk, examples) : examples;
  const int64_t chunks = (examples + chunk - 1) / chunk, chunk_tokens = k * chunk * length;
  const int64_t unique = std::min(shape.vocab, chunk_tokens), unique_all = std::min(shape.vocab, n * chunk_tokens);
  StepCost out;
  auto add = [&](const char* phase, const char* op, int64_t bytes) {
    out.calls.push_back({phase, op, static_cast<uint64_t>(bytes)});
  };
  auto shard_of = [&](int64_t numel) { return (numel + n - 1) / n; };
  const model::UnitShape& words = shape.units.front();  // looked up by rows
  // Batch: the duplicate filter's exchange.
  add("batch", "all_gather", 8), add("batch", "all_gather", 8 * (k + 1) * examples);
  // Forward: stage 3 looks up the word-embedding rows and gathers every other unit.
  auto forward = [&]() {
    if (s.stage < 3) return;
    add("forward", "all_gather", 8), add("forward", "all_gather", 8 * unique);
    add("forward", "all_reduce", unique_all * h * s.param_bytes);
    add_stage3_gathers(out.calls, shape, s, false);
  };
  // Backward: stages 2/3 reduce each trainable dense gradient and gather the word-embedding rows'
  // gradients (when they train); stage 3 gathers the units again (all but the last).
  auto backward = [&]() {
    if (s.stage < 2) return;
    for (size_t u = 1; u < shape.units.size(); ++u)
      for (int64_t numel : shape.units[u].param_numels) add("backward", "reduce", numel * s.reduce_bytes);
    if (s.stage == 3) add_stage3_gathers(out.calls, shape, s, true);
    if (words.numel() > 0) {
      const int64_t word_rows = s.stage == 3 ? unique_all : chunk_tokens;
      add("backward", "all_gather", 8), add("backward", "all_gather", 8 * word_rows);
      add("backward", "all_gather", word_rows * h * s.reduce_bytes);
    }
  };
  auto loss = [&]() {
    if (n > 1) add("loss", "all_gather", rows * h * 4);
    add("loss", "all_gather", examples * 4);
  };
  if (batch.chunk == 0) {
    forward(), loss(), backward();
  } else {
    for (int64_t i = 0; i < chunks; ++i) forward();
    loss();
    for (int64_t i = 0; i < chunks; ++i) forward(), backward();
  }
  // Step: as rank_step_cost, over the units that train.
  for (const model::UnitShape& u : shape.units)
    if (s.stage == 1 && (n > 1 || s.reduce_bytes != 4) && u.numel() > 0)
      add("step", "reduce_scatter", shard_of(u.numel()) * n * s.reduce_bytes);
  add("step", "all_reduce", 8);
  if (s.stage < 3)
    for (const model::UnitShape& u : shape.units)
      if (u.numel() > 0) add("step", "all_gather", shard_of(u.numel()) * s.param_bytes);
  if (n > 1) add("step", "all_reduce", 8);

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
