// Matryoshka embeddings (Kusupati et al. 2022; sentence-transformers' MatryoshkaLoss): the loss is
// the weighted sum of the objective over each truncation of the embeddings to its first d
// dimensions, re-normalised, so that one model's embeddings can be cut to any of those sizes.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loss/angle_loss.h"

namespace angle::loss {

struct Matryoshka {
  std::vector<int64_t> dims;    // strictly decreasing; empty: off (the objective on the whole embedding)
  std::vector<double> weights;  // one per dim (default 1 each)
  bool enabled() const { return !dims.empty(); }
};

// From the job's texts "384,128,64" and "1,1,1" ("" weights: 1 each). Errors name the keys
// WHAT_dims and WHAT_weights: dims that are not positive integers in strictly decreasing order, or weights of another
// count or negative.
Matryoshka parse_matryoshka(const std::string& dims, const std::string& weights, const std::string& what);
// Once the embedding width is known: no dim above it, and even dims where the angle term needs them.
void check_matryoshka(const Matryoshka& m, int64_t width, bool even_dims, const std::string& what);

// Σ_d w_d · objective(normalize(embeddings[:, :d])), or objective(embeddings) when off. Each
// truncation's terms are reported as "TERM@d" (plain "TERM" for the whole width).
using Objective = std::function<LossValue(const at::Tensor& embeddings)>;
LossValue matryoshka_objective(const Matryoshka& m, const at::Tensor& embeddings, const Objective& objective);

}  // namespace angle::loss
