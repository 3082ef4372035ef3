#include "plan/memory_plan.h"

#include <algorithm>

namespace angle::plan {

StateBytes state_peak(const model::ModelShape& shape, const ShardSettings& s) {
  StateBytes b;
  const int64_t n = s.ranks;
  int64_t padded = 0, shard = 0, largest_gathered = 0, largest_dense_param = 0, largest_dense_unit = 0, dense = 0,
          frozen = 0;
  for (const model::UnitShape& u : shape.units) {
    const int64_t p = (u.numel() + n - 1) / n * n;
    padded += p, shard += p / n;
    frozen += (u.frozen + n - 1) / n * n;
    if (!u.sparse) {
      largest_gathered = std::max(largest_gathered, (u.numel() + u.frozen + n - 1) / n * n);
      dense += u.numel();
      largest_dense_unit = std::max(largest_dense_unit, u.numel());
      for (int64_t numel : u.param_numels) largest_dense_param = std::max(largest_dense_param, numel);
    }
  }
  b.optim = 2 * 4 * shard;  // AdamW moments, fp32, this rank's slice
  const bool views = s.stage < 3 && s.param_bytes == 4;  // the gathered fp32 buffers are the master
  if (views) b.params = 4 * padded;
  else if (s.stage < 3) b.params = 4 * shard + s.param_bytes * padded;
  else b.params = 4 * shard + 2 * s.param_bytes * largest_gathered;  // a unit and the prefetched next
  // Frozen weights (LoRA's base) are held in the parameter dtype, sharded at stage 3.
  b.params += s.param_bytes * (s.stage < 3 ? frozen : frozen / n);
  // Gradients: a dense parameter's gradient is held from autograd until it is added or reduced,
  // in reverse parameter order. A decoder layer's input_layernorm weight, second in that order,
  // gets its gradient last: every other gradient of the layer waits for it (full fine-tuning).
  const bool waits_for_layer = shape.decoder && shape.lora_rank == 0;
  const int64_t held = 4 * (waits_for_layer ? largest_dense_unit : largest_dense_param);
  if (s.stage == 1) {
    // The whole local gradient; at the step (several ranks or bf16) the reduce-scattered shards.
    const bool scatter = n > 1 || s.reduce_bytes != 4;
    b.grads = 4 * padded + std::max(held, scatter ? s.reduce_bytes * shard + (s.reduce_bytes != 4 ? s.reduce_bytes * padded : 0)
                                                    : int64_t{0});
  } else {
    // This rank's shard, plus reductions in flight (bounded by shard.inflight_mb, the last
    // gradient past the bound included; never more than all dense gradients).
    b.grads = 4 * shard + std::min(s.inflight_bytes + held, 4 * dense);
  }
  return b;
}

int64_t PeakBytes::step() const {
  return retained + state + static_cast<int64_t>(kHeapOverhead * static_cast<double>(activations + loss));
}

int64_t PeakBytes::total() const { return runtime + std::max(load, step()); }

PeakBytes peak_bytes(const model::ModelShape& shape, const ShardSettings& s, int64_t runtime, int64_t activations,
                     int64_t loss) {
  const StateBytes state = state_peak(shape, s);
  // Loading: the mapped model file and the model built from it (frozen weights included), beside
  // the sharder's state.
  const int64_t model = shape.numel() + shape.frozen();
  return {runtime, 8 * model + state.total(), 4 * model, state.total(), activations, loss};
}

}  // namespace angle::plan
