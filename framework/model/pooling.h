// Sentence pooling over the last hidden state, as AnglE (reference §2.1) defines each strategy.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "text/tokenizer.h"

namespace angle::model {

enum class PoolingKind { cls, cls_avg, cls_max, mean, max, last, index };
using PaddingSide = text::PaddingSide;

struct Pooling {
  PoolingKind kind = PoolingKind::cls;
  int64_t index = 0;  // for PoolingKind::index

  // "cls", "cls_avg", "cls_max", "mean" (or "avg"), "max", "last", or an integer position.
  static Pooling parse(const std::string& name);
  std::string name() const;
};

// hidden [B, T, D], mask [B, T] (1 = token, 0 = padding) -> [B, D].
//  mean: masked mean; max: max of h*mask (padding counts as 0, as in AnglE);
//  last: h[:, -1] with left padding, else the last unmasked position.
at::Tensor pool(const at::Tensor& hidden, const at::Tensor& mask, const Pooling& pooling,
                PaddingSide side = PaddingSide::right);

}  // namespace angle::model
