// Scaled dot-product attention of BERT and the decoders, in training with keyed dropout
// (model/dropout.h) on the attention probabilities.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/dropout.h"

namespace angle::model {

// Sequences up to this length train on the CPU through the math path below, not the fused kernel:
// its backward is the slower one there at these lengths (tests/bench/attention_paths.py, AMD EPYC
// Zen 4, 2 threads: 26 vs 59 ms at T = 40, 39 vs 51 ms at T = 128, 71 vs 48 ms at T = 256).
constexpr int64_t kCpuMathAttentionMaxLength = 96;

// Whether attention() takes the math path: with dropout, or for a decoder's training (`training`:
// BERT's training runs take it for their dropout anyway) on the CPU with T <= 96.
bool math_attention(const at::Tensor& q, double p, bool training);

// q, k, v: [B, H, T, D]; allowed: bool, broadcastable to [B, H, T, T] (true: the query may attend
// to the key). Fused: at::scaled_dot_product_attention. The math path (math_attention()): SDPA's
// math path with the keyed mask at `site` when p > 0: the same products and saved tensors, and like
// it in fp32 when the inputs are bf16/fp16 (bf16 autocast), autocast held off so that the products
// stay fp32.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double p,
                     const KeyedDropout& dropout, uint32_t site, bool training);

}  // namespace angle::model
