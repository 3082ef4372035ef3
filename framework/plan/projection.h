// `angle plan --project`: a step on uniform data (every text the same number of tokens, every
// token distinct: an upper bound on the embedding look-ups) for a model known only by its
// config.json (BERT, or a LLaMA-family decoder, optionally with LoRA), in closed form: rank 0's
// step cost as rank_step_cost (plan/step_cost.h) counts a job's: its collective calls (one call
// per parameter for the gradient reductions, where the sharder splits a parameter at shard
// borders), model FLOPs, activations and loss. For models and cluster sizes the product cannot
// run here (7B-parameter decoders, hundreds of GPUs).
#pragma once
#include <cstdint>

#include "plan/step_cost.h"

namespace angle::plan {

struct UniformBatch {
  int64_t global_batch = 0;      // examples per optimizer step
  int64_t tokens = 0;            // per text, special tokens included
  int64_t rows_per_example = 2;  // texts per example: 2 (formats A, B) or 3 (C)
  int64_t chunk = 0;             // gradient caching: examples per forward (0: the rank's whole share)
};

StepCost uniform_step_cost(const model::ModelShape& shape, const ShardSettings& s, const UniformBatch& batch);

}  // namespace angle::plan
