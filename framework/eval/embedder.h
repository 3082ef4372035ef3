// Embeds many texts with an Encoder: tokenizes, sorts by length so that batches carry little
// padding (as sentence-transformers does), runs the model without autograd, and restores the
// input order.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/encoder.h"

namespace angle::eval {

struct EmbedOptions {
  size_t batch_size = 32;
  bool progress = true;  // a progress line on stderr
};

// [N, D] float32 on the CPU, row i for texts[i].
at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options = {});

}  // namespace angle::eval
