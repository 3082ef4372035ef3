// Scaled dot-product attention of BERT and the decoders, in training with keyed dropout
// (model/dropout.h) on the attention probabilities.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/dropout.h"

namespace angle::model {

// q, k, v: [B, H, T, D]; allowed: bool, broadcastable to [B, H, T, T] (true: the query may attend
// to the key). p = 0: at::scaled_dot_product_attention (its fused kernels). p > 0: SDPA's math path
// with the keyed mask at `site`: the same products and saved tensors, and like it in fp32 when the
// inputs are bf16/fp16 (bf16 autocast), autocast held off so that the products stay fp32.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double p,
                     const KeyedDropout& dropout, uint32_t site);

}  // namespace angle::model
