#include "model/attention.h"

#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>
#include <limits>

namespace angle::model {

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double p,
                     const KeyedDropout& dropout, uint32_t site) {
  if (p == 0) {
    // train.deterministic on a GPU: the math path (the fused kernels' backward adds with atomics).
    if (q.is_cuda() && at::globalContext().deterministicAlgorithms())
      return std::get<0>(at::_scaled_dot_product_attention_math(q, k, v, allowed));
    return at::scaled_dot_product_attention(q, k, v, allowed);
  }
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const at::ScalarType dtype = q.scalar_type();
  auto accumulate = [&](const at::Tensor& t) { return dtype == at::kFloat ? t : t.to(at::kFloat); };
  const double root_scale = std::sqrt(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  at::Tensor scores = at::matmul(accumulate(q) * root_scale, (accumulate(k) * root_scale).transpose(-2, -1));
  scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(dropout.scores(at::softmax(scores, -1), p, site), accumulate(v)).to(dtype);
}

}  // namespace angle::model
