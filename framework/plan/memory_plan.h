// The memory half of `angle plan` (formulas in README "Planning"): the model-state bytes one rank
// holds at its peak for a sharding stage, exactly as the sharder allocates them (shard/fsdp.cpp),
// plus the bounded transients (gradients in flight).
#pragma once
#include <cstdint>

#include "plan/model_shape.h"

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
StateBytes state_peak(const ModelShape& shape, const ShardSettings& s);

}  // namespace angle::plan
