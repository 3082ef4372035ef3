// The activation half of `angle plan`'s memory (formulas in README "Planning"): the bytes autograd
// keeps from one forward of model::BertModel for its backward, counted tensor by tensor from
// model/bert.cpp (fp32), and the loss's gathered embeddings and score matrices. LLaMA-family
// decoders (for projections) as transformers runs them in bf16, counted by hand.
#pragma once
#include <cstdint>

#include "plan/model_shape.h"

namespace angle::plan {

// One forward: `rows` sequences padded to `longest`, `tokens` real tokens among them.
struct ForwardShape {
  int64_t rows = 0, longest = 0, tokens = 0;
  bool dropout = false;  // dropout > 0 in training: masks kept, attention in the math path
};

// Bytes one encoder layer's forward keeps for its backward, its input included.
int64_t layer_activation_bytes(const ModelShape& shape, const ForwardShape& f);

// Bytes held at the start of the backward (every saved tensor), plus the largest layer's
// gradients in flight during it. For a decoder shape (projections only): the bf16 count of
// decoder_activation_bytes, every row `longest` tokens.
int64_t activation_bytes(const ModelShape& shape, const ForwardShape& f);
int64_t decoder_activation_bytes(const ModelShape& shape, const ForwardShape& f);

// The loss of one micro-batch on `global_rows` gathered embeddings (every rank computes it on all
// of them), `candidates` scored per query row in the in-batch-negative term.
int64_t loss_bytes(const ModelShape& shape, int64_t global_rows, int64_t candidates);

}  // namespace angle::plan
