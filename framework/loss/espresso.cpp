#include "loss/espresso.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>

#include "core/error.h"

namespace angle::loss {

at::Tensor pca_compress(const at::Tensor& m, int64_t k) {
  c10::NoGradGuard no_grad;
  at::Tensor x = m.detach();
  at::Tensor a = at::softmax(at::matmul(x.t(), x) / std::sqrt(static_cast<double>(x.size(1))), -1);
  auto [u, s, vh] = at::linalg_svd(a, /*full_matrices=*/false);
  return at::matmul(x, u.narrow(1, 0, k) * s.narrow(0, 0, k).unsqueeze(0));
}

at::Tensor distillation_loss(const at::Tensor& x, const at::Tensor& y, double kl_temperature) {
  at::Tensor loss = at::mse_loss(x, y);
  if (kl_temperature > 0) {
    at::Tensor log_q = at::log_softmax(x / kl_temperature, -1), log_p = at::log_softmax(y / kl_temperature, -1);
    loss = loss + (log_p.exp() * (log_p - log_q)).sum() / x.size(0) * kl_temperature;
  }
  return loss;
}

LossValue espresso_objective(const Espresso& e, const at::Tensor& layers, int64_t hidden, const Objective& objective) {
  ANGLE_CHECK(layers.dim() == 2 && layers.size(1) % hidden == 0 && layers.size(1) / hidden >= 3,
              "ESE: expected the pooled hidden states of at least 2 layers and the embeddings, [rows, (L + 1) x ",
              hidden, "], got ", layers.sizes());
  const int64_t count = layers.size(1) / hidden - 1;  // L
  const int64_t k = e.compression_size;
  ANGLE_CHECK(k > 0 && k <= hidden, "loss.ese_compression_size ", k, " must be in 1..", hidden);
  auto layer = [&](int64_t i) { return layers.narrow(1, i * hidden, hidden); };
  auto compressed = [&](const at::Tensor& h, LossValue* value) {  // Loss(h[:, :k]) + D(h[:, :k], P_k(h))
    at::Tensor slim = h.narrow(1, 0, k);
    LossValue inner = objective(slim);
    at::Tensor total = inner.total, distill;
    if (e.pca) distill = distillation_loss(slim, pca_compress(h, k), e.kl_temperature), total = total + distill;
    if (value) {
      for (const auto& [name, term] : inner.terms) value->terms[name + "@" + std::to_string(k)] = term;
      if (distill.defined()) value->terms["ese_distill"] = distill.item<double>();
    }
    return total;
  };
  LossValue out = objective(layer(count));
  out.total = out.total + compressed(layer(count), &out);
  at::Tensor lower = at::zeros({}, layers.options());
  for (int64_t i = 0; i + 2 <= count; ++i) lower = lower + compressed(layer(i), nullptr) / (1.0 + std::log1p(double(i)));
  lower = lower / static_cast<double>(count - 1);
  out.terms["ese_layers"] = lower.item<double>();
  out.total = out.total + lower;
  return out;
}

}  // namespace angle::loss
