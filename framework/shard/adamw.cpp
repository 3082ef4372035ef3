#include "shard/adamw.h"

#include <ATen/ATen.h>

#include <cmath>

namespace angle::shard {

void adamw_update(at::Tensor& p, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  const at::Tensor& decay_mask, int64_t step, double lr, const AdamWOptions& o) {
  if (o.weight_decay != 0) p.mul_(1 - lr * o.weight_decay * decay_mask);
  exp_avg.lerp_(grad, 1 - o.beta1);
  exp_avg_sq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
  const double bias1 = 1 - std::pow(o.beta1, static_cast<double>(step));
  const double bias2 = 1 - std::pow(o.beta2, static_cast<double>(step));
  at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(o.eps);
  p.addcdiv_(exp_avg, denom, -lr / bias1);
}

}  // namespace angle::shard
