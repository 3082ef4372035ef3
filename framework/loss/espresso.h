// Espresso Sentence Embeddings (ESE; angle-emb's AngleESETrainer, ../shared/reference/angle-reference.md
// §1.8): the objective on the last layer, on its first k dimensions, and on the first k dimensions of
// every lower layer, each compressed part pulled towards a PCA-like projection of its layer; a model
// whose embeddings can be cut to k dimensions and whose lower layers already embed. With L layers and
// H_i the pooled hidden state i (0: the embeddings' output):
//   Loss(H_L) + Loss(H_L[:, :k]) + D(H_L[:, :k], P_k(H_L))
//   + 1/(L−1) Σ_{i=0}^{L−2} [Loss(H_i[:, :k]) + D(H_i[:, :k], P_k(H_i))] / (1 + ln(1 + i))
// D(x, y) = MSE(x, y) + T·KL(softmax(y/T) ‖ softmax(x/T)) (KL averaged over rows; none for T <= 0),
// P_k(m) = m·U_k·diag(S_k) from the SVD of A = row-softmax(mᵀm/√D), computed without gradient.
// The reference takes U_k, S_k from torch.svd_lowrank (randomised); ours from the exact SVD, which the
// randomised one approximates: a fixed target instead of a random one.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "loss/matryoshka.h"

namespace angle::loss {

struct Espresso {
  bool enabled = false;
  int64_t compression_size = 128;  // k
  double kl_temperature = 1.0;     // T
  bool pca = true;                 // the D terms (angle-emb's apply_ese_pca)
};

// P_k(m) for m [N, D]: [N, k], no gradient.
at::Tensor pca_compress(const at::Tensor& m, int64_t k);
// D(x, y) above, differentiable in x.
at::Tensor distillation_loss(const at::Tensor& x, const at::Tensor& y, double kl_temperature);

// `layers` [rows, (L + 1)·H]: the pooled hidden states 0..L side by side. Terms: the last layer's
// objective's as they are, the compressed ones' as "TERM@k", and "ese_distill", "ese_layers".
LossValue espresso_objective(const Espresso& e, const at::Tensor& layers, int64_t hidden, const Objective& objective);

}  // namespace angle::loss
