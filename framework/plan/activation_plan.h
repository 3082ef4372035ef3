// The activation half of `angle plan`'s memory (formulas in README "Planning"): the bytes autograd
// keeps from one forward of model::BertModel or model::DecoderModel for its backward, counted
// tensor by tensor from model/bert.cpp and model/decoder.cpp (fp32), and the loss's gathered
// embeddings and score matrices. For projections in bf16, LLaMA-family decoders as transformers
// runs them, counted by hand.
#pragma once
#include <cstdint>

#include "model/model_shape.h"

namespace angle::plan {

// One forward: `rows` sequences padded to `longest`, `tokens` real tokens among them.
struct ForwardShape {
  int64_t rows = 0, longest = 0, tokens = 0;
  bool dropout = false;          // dropout > 0 in training: masks kept, attention in the math path
  bool adapter_dropout = false;  // LoRA dropout > 0 in training: each adapter keeps a mask
  bool bf16 = false;             // a decoder projected in bf16 (transformers' count)
};

// Bytes one encoder layer's forward keeps for its backward, its input included.
int64_t layer_activation_bytes(const model::ModelShape& shape, const ForwardShape& f);

// Bytes one decoder layer's forward keeps for its backward (fp32), its input included.
int64_t decoder_layer_activation_bytes(const model::ModelShape& shape, const ForwardShape& f);

// Bytes held at the start of the backward (every saved tensor), plus the largest layer's
// gradients in flight during it. A decoder runs every row padded to `longest`.
int64_t activation_bytes(const model::ModelShape& shape, const ForwardShape& f);
int64_t decoder_activation_bytes(const model::ModelShape& shape, const ForwardShape& f);

// The loss of one micro-batch on `global_rows` gathered embeddings (every rank computes it on all
// of them), `candidates` scored per query row in the in-batch-negative term.
int64_t loss_bytes(const model::ModelShape& shape, int64_t global_rows, int64_t candidates);

}  // namespace angle::plan
