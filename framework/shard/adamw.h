// torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments) on one flat fp32
// slice: the sharder applies it to each unit's shard.
#pragma once
#include <ATen/core/Tensor.h>

namespace angle::shard {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// `decay_mask` is 1 where weight decay applies and 0 elsewhere (HF: not biases/LayerNorm);
// `step` counts from 1; the gradient is used multiplied by `grad_multiplier` (gradient clipping)
// and may be overwritten. Updates `param`, `exp_avg` and `exp_avg_sq` in place.
void adamw_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  const at::Tensor& decay_mask, int64_t step, double lr, const AdamWOptions& options,
                  double grad_multiplier = 1.0);

}  // namespace angle::shard
