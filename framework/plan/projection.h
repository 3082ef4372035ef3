// `angle plan --project`: a step on uniform data (every text the same number of tokens, every
// token distinct: an upper bound on the embedding look-ups) for a model known only by its
// config.json, in closed form: rank 0's collective calls as step_comm_bytes counts them (one call
// per parameter for the gradient reductions, where the sharder splits a parameter at shard
// borders), its model FLOPs and activations. For models and cluster sizes the product cannot run
// here (LLaMA-family decoders with LoRA, hundreds of GPUs).
#pragma once
#include <cstdint>

#include "plan/comm_plan.h"

namespace angle::plan {

struct UniformBatch {
  int64_t global_batch = 0;      // examples per optimizer step
  int64_t tokens = 0;            // per text, special tokens included
  int64_t rows_per_example = 2;  // texts per example: 2 (formats A, B) or 3 (C)
  int64_t chunk = 0;             // gradient caching: examples per forward (0: the rank's whole share)
};

CommBytes uniform_step(const ModelShape& shape, const ShardSettings& s, const UniformBatch& batch);

}  // namespace angle::plan
