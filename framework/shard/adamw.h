// torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments) on one flat fp32
// slice: the sharder applies it to each unit's shard.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace angle::shard {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// The elements [first, end) of a slice that weight decay applies to (HF: not biases/LayerNorm).
using DecayRanges = std::vector<std::pair<int64_t, int64_t>>;

// `step` counts from 1; the gradient is used multiplied by `grad_multiplier` (gradient clipping)
// and may be overwritten. Updates `param`, `exp_avg` and `exp_avg_sq` in place.
void adamw_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  const DecayRanges& decayed, int64_t step, double lr, const AdamWOptions& options,
                  double grad_multiplier = 1.0);

}  // namespace angle::shard
