#include "plan/activation_plan.h"

namespace angle::plan {

namespace {

struct Sizes {
  int64_t padded, tokens, mask, scores;  // positions, per-token rows, dropout-mask bytes, attention scores
};

Sizes sizes_of(const ModelShape& shape, const ForwardShape& f) {
  const int64_t padded = f.rows * f.longest;
  // Per-token operations run on the packed tokens, or on every position when the batch is nearly
  // dense (model/bert.cpp's rule). On the CPU a dropout mask is a float tensor of its input's
  // shape (at::dropout's fallback).
  const bool dense = f.tokens * 10 >= padded * 9;
  return {padded, dense ? padded : f.tokens, f.dropout ? 4 : 0, f.rows * shape.heads * f.longest * f.longest};
}

}  // namespace

int64_t layer_activation_bytes(const ModelShape& shape, const ForwardShape& f) {
  const Sizes z = sizes_of(shape, f);
  const int64_t h = shape.hidden, n = z.tokens;
  const bool packed = n < z.padded;
  // Per token and hidden unit: the layer's input (Q/K/V projections), the attention output packed
  // (output projection), the two LayerNorm inputs, the feed-forward's input, two dropout masks;
  // when packed, also Q, K and V before unpacking (index_copy keeps its source). Per token and
  // intermediate unit: the GELU's input and output.
  int64_t bytes = n * h * (4 * 5 + 2 * z.mask + (packed ? 4 * 3 : 0)) + n * shape.intermediate * 8;
  // Attention on the padded layout: with dropout the math path keeps scaled Q and K and V reshaped
  // for its batched products, the softmax output, its dropout mask and the dropped probabilities;
  // without, the fused kernel keeps Q, K, V and its output.
  bytes += f.dropout ? z.padded * h * 4 * 3 + z.scores * 4 * 3 : z.padded * h * 4 * 4;
  return bytes;
}

// A LLaMA-family layer as transformers' LlamaDecoderLayer runs in bf16 with a fused attention
// kernel (counted by hand, not measured here: the product does not train decoders yet): per
// token, each RMSNorm keeps its float32 input (4h) and bf16 output (2h); the kernel keeps the
// rotated Q (2q) and K, V (2kv each) and its output (2q, also the output projection's input); the
// MLP keeps gate and up outputs, the SiLU output and the product (2f each). Adapters' rank-r
// intermediates are left out.
int64_t decoder_activation_bytes(const ModelShape& shape, const ForwardShape& f) {
  const int64_t tokens = f.rows * f.longest, h = shape.hidden, q = shape.heads * shape.head_dim,
                kv = shape.kv_heads * shape.head_dim, ff = shape.intermediate;
  const int64_t layer = tokens * (12 * h + 4 * q + 4 * kv + 8 * ff);
  const int64_t in_flight = tokens * (4 * ff + 4 * h);  // the largest layer's input gradients (bf16)
  return shape.layers * layer + in_flight;
}

int64_t activation_bytes(const ModelShape& shape, const ForwardShape& f) {
  if (f.rows == 0) return 0;
  if (shape.decoder) return decoder_activation_bytes(shape, f);
  const Sizes z = sizes_of(shape, f);
  const int64_t embeddings = z.tokens * shape.hidden * (4 + z.mask);  // LayerNorm input, dropout mask
  // During the backward of a layer: gradients of its largest tensors (feed-forward intermediate
  // twice, the attention probabilities twice in the math path, a few hidden-sized ones).
  const int64_t in_flight = z.tokens * shape.intermediate * 4 * 2 + z.padded * shape.hidden * 4 * 4 +
                            (f.dropout ? z.scores * 4 * 2 : 0);
  return embeddings + shape.layers * layer_activation_bytes(shape, f) + in_flight;
}

int64_t loss_bytes(const ModelShape& shape, int64_t global_rows, int64_t candidates) {
  // The gathered embeddings, their normalised copy and gradient (float32); the score matrix
  // with its softmax and gradient (float32, three copies).
  return global_rows * shape.hidden * 4 * 3 + global_rows * candidates * 4 * 3;
}

}  // namespace angle::plan
