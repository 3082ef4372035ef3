#include "model/attention.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>
#include <limits>

namespace angle::model {

bool math_attention(const at::Tensor& q, double p, bool training) {
  return p > 0 || (training && q.is_cpu() && q.size(-2) <= kCpuMathAttentionMaxLength);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double p,
                     const KeyedDropout& dropout, uint32_t site, bool training) {
  if (!math_attention(q, p, training)) {
    // train.deterministic on a GPU: the math path (the fused kernels' backward adds with atomics).
    if (q.is_cuda() && at::globalContext().deterministicAlgorithms())
      return std::get<0>(at::_scaled_dot_product_attention_math(q, k, v, allowed));
    return at::scaled_dot_product_attention(q, k, v, allowed);
  }
  // Under autocast SDPA's inputs (here rotated Q and K in fp32 beside V in bf16) are cast to the
  // autocast type first, and so is its output.
  const at::DeviceType device = q.device().type();
  const at::ScalarType dtype =
      at::autocast::is_autocast_enabled(device) ? at::autocast::get_autocast_dtype(device) : q.scalar_type();
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  auto accumulate = [&](const at::Tensor& t) { return t.to(dtype).to(at::kFloat); };
  const double root_scale = std::sqrt(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  at::Tensor scores = at::matmul(accumulate(q) * root_scale, (accumulate(k) * root_scale).transpose(-2, -1));
  scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(dropout.scores(at::softmax(scores, -1), p, site), accumulate(v)).to(dtype);
}

}  // namespace angle::model
