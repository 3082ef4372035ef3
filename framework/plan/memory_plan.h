// The memory half of `angle plan` (formulas in README "Planning"): the model-state bytes one rank
// holds at its peak for a sharding stage, exactly as the sharder allocates them (shard/fsdp.cpp),
// plus the bounded transients (gradients in flight); frozen weights in the parameter dtype.
#pragma once
#include <cstdint>

#include "model/model_shape.h"

namespace angle::plan {

struct ShardSettings {
  int stage = 2;
  int64_t ranks = 1;
  int64_t param_bytes = 4, reduce_bytes = 4;  // 4 (fp32) or 2 (bf16)
  int64_t inflight_bytes = 12 << 20;
};

struct StateBytes {
  int64_t params = 0, grads = 0, optim = 0;
  int64_t total() const { return params + grads + optim; }
};

// Per rank, at the peak of a step.
StateBytes state_peak(const model::ModelShape& shape, const ShardSettings& s);

// The peak resident bytes of a rank: the runtime and data it holds before the model, then the
// larger of loading (every rank maps the whole fp32 model file and builds the model from it while
// the sharder allocates its state) and a step (model state, one forward's activations, the loss).
// Freed memory stays resident in glibc's heap where later allocations do not reuse it exactly:
// the model as loaded (4Ψ, freed when the sharder takes its parameters over) and a factor on the
// activations (varying shapes), both measured on this machine (README "Planning"); DeepSpeed's
// estimators use an "additional buffer factor" of 1.5 for the same reason.
constexpr double kHeapOverhead = 1.15;
struct PeakBytes {
  int64_t runtime = 0, load = 0, retained = 0, state = 0, activations = 0, loss = 0;
  int64_t step() const;  // retained + state + kHeapOverhead x (activations + loss)
  int64_t total() const;
};
PeakBytes peak_bytes(const model::ModelShape& shape, const ShardSettings& s, int64_t runtime, int64_t activations,
                     int64_t loss);

}  // namespace angle::plan
