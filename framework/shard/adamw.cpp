#include "shard/adamw.h"

#include <ATen/ATen.h>

namespace angle::shard {

// One pass over the slice: ATen's fused AdamW kernel (the one behind torch.optim.AdamW(fused=True))
// reads parameter, gradient and both moments once and writes them back, where the unfused
// formula takes about eight passes and allocates two slice-sized temporaries every step (fresh
// pages each time for slices beyond malloc's mmap threshold). The decay mask is not a scalar, so
// decay is applied beforehand, as the kernel would do first.
void adamw_update(at::Tensor& p, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  const at::Tensor& decay_mask, int64_t step, double lr, const AdamWOptions& o,
                  double grad_multiplier) {
  if (o.weight_decay != 0) p.mul_(1 - lr * o.weight_decay * decay_mask);
  const at::Tensor steps = at::full({}, static_cast<double>(step), p.options());
  std::optional<at::Tensor> grad_scale;  // the kernel divides the gradient by it
  if (grad_multiplier != 1.0) grad_scale = at::full({}, 1.0 / grad_multiplier, p.options());
  at::_fused_adamw_({p}, {grad}, {exp_avg}, {exp_avg_sq}, {}, {steps}, lr, o.beta1, o.beta2, 0.0, o.eps,
                    /*amsgrad=*/false, /*maximize=*/false, grad_scale, /*found_inf=*/std::nullopt);
}

}  // namespace angle::shard
