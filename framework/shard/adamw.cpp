#include "shard/adamw.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace angle::shard {

// One pass over the slice: ATen's fused AdamW kernel (the one behind torch.optim.AdamW(fused=True))
// reads parameter, gradient and both moments once and writes them back, where the unfused
// formula takes about eight passes and allocates two slice-sized temporaries every step (fresh
// pages each time for slices beyond malloc's mmap threshold). Decay covers only part of the slice,
// so it is applied beforehand (in place, p *= 1 - lr wd as torch.optim.AdamW does), range by
// range: no slice-sized mask is kept. The kernel reads raw pointers and checks no shapes: this does.
void adamw_update(at::Tensor& p, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  const DecayRanges& decayed, int64_t step, double lr, const AdamWOptions& o,
                  double grad_multiplier) {
  for (const at::Tensor& t : {p, grad, exp_avg, exp_avg_sq})
    ANGLE_CHECK(t.numel() == p.numel() && t.is_contiguous() && t.scalar_type() == at::kFloat,
                "adamw_update: parameter, gradient and moments must be contiguous fp32 of one size");
  for (const auto& [first, end] : decayed) {
    ANGLE_CHECK(0 <= first && first <= end && end <= p.numel(), "adamw_update: decay range outside the slice");
    if (o.weight_decay != 0) p.narrow(0, first, end - first).mul_(1 - lr * o.weight_decay);
  }
  const at::Tensor steps = at::full({}, static_cast<double>(step), p.options());
  std::optional<at::Tensor> grad_scale;  // the kernel divides the gradient by it
  if (grad_multiplier != 1.0) grad_scale = at::full({}, 1.0 / grad_multiplier, p.options());
  at::_fused_adamw_({p}, {grad}, {exp_avg}, {exp_avg_sq}, {}, {steps}, lr, o.beta1, o.beta2, 0.0, o.eps,
                    /*amsgrad=*/false, /*maximize=*/false, grad_scale, /*found_inf=*/std::nullopt);
}

}  // namespace angle::shard
