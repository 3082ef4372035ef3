#include "plan/activation_plan.h"

#include <algorithm>
#include <map>
#include <string>

#include "model/attention.h"

namespace angle::plan {

namespace {

struct Sizes {
  int64_t padded, tokens, mask, scores;  // positions, per-token rows, dropout-mask bytes, attention scores
};

Sizes sizes_of(const model::ModelShape& shape, const ForwardShape& f) {
  const int64_t padded = f.rows * f.longest;
  // Per-token operations run on the packed tokens, or on every position when the batch is nearly
  // dense (model/bert.cpp's rule). A dropout mask is counted as a float tensor of its input's
  // shape (at::dropout's CPU fallback, which tests/oracle/make_activation_reference.py replicates);
  // model/dropout.cpp keeps a byte per element on the CPU, so this is an upper bound.
  const bool dense = model::runs_padded(f.tokens, padded);
  return {padded, dense ? padded : f.tokens, f.dropout ? 4 : 0, f.rows * shape.heads * f.longest * f.longest};
}

}  // namespace

int64_t layer_activation_bytes(const model::ModelShape& shape, const ForwardShape& f) {
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

// One layer of model::DecoderModel in float32 on the CPU, counted from decoder.cpp per padded
// position (decoders do not pack): the layer's input and the attention residual (the second norm's
// input), both norms' reciprocal RMS, the rotated Q and K and V (after the grouped-query repeat),
// the gate and up outputs and the SiLU output. Up to kCpuMathAttentionMaxLength the attention is
// the math path (model/attention.h): Q and K are kept scaled, with the softmax output and the byte
// mask of the keys it hides, and its output only where the output projection reads it for a
// gradient. Above, the fused kernel keeps its output (the output projection's input), its
// log-sum-exp and the additive float mask it builds from the boolean one. With full fine-tuning
// also both norms' normalised inputs (for their weights' gradients) and the inputs of q/k/v,
// gate/up and down (and o, after the math path). With LoRA an adapter keeps its
// input (shared by the projections that read the same tensor) and its rank-r intermediate; with
// adapter dropout each adapter keeps its own byte mask and dropped input instead.
int64_t decoder_layer_activation_bytes(const model::ModelShape& shape, const ForwardShape& f) {
  const int64_t positions = f.rows * f.longest, h = shape.hidden, q = shape.heads * shape.head_dim,
                ff = shape.intermediate, r = shape.lora_rank;
  const bool math = f.longest <= model::kCpuMathAttentionMaxLength;
  int64_t per_position = 8 * h + 8 + 12 * q + 12 * ff + (math ? 4 * shape.heads * f.longest : 4 * q + 4 * shape.heads);
  if (r == 0) {
    per_position += 16 * h + 4 * ff + (math ? 4 * q : 0);
  } else {
    // The projections that read one tensor of `width` values per position, and whether the
    // layer keeps that tensor anyway (the output projection reads the kernel's output).
    auto readers = [&](std::initializer_list<const char*> names, int64_t width, bool kept) {
      int64_t adapters = 0;
      for (const char* name : names) adapters += std::count(shape.adapted.begin(), shape.adapted.end(), name);
      if (f.adapter_dropout) return adapters * (5 * width + 4 * r);
      return adapters * 4 * r + (adapters > 0 && !kept ? 4 * width : 0);
    };
    per_position += readers({"q_proj", "k_proj", "v_proj"}, h, false) + readers({"o_proj"}, q, !math) +
                    readers({"gate_proj", "up_proj"}, h, false) + readers({"down_proj"}, ff, false);
  }
  return positions * per_position + f.rows * f.longest * f.longest * (math ? 1 : 4);
}

namespace {

// A LLaMA-family layer as transformers runs it in bf16 with a fused attention kernel on an
// accelerator (`angle plan --project --dtype bf16`; counted by hand): per token, each RMSNorm
// keeps its float32 input (4h) and bf16 output (2h); the kernel keeps the rotated Q (2q) and K,
// V (2kv each) and its output (2q, also the output projection's input); the MLP keeps gate and
// up outputs, the SiLU output and the product (2f each). Adapters' rank-r intermediates are left out.
int64_t transformers_bf16_decoder_bytes(const model::ModelShape& shape, const ForwardShape& f) {
  const int64_t tokens = f.rows * f.longest, h = shape.hidden, q = shape.heads * shape.head_dim,
                kv = shape.kv_heads * shape.head_dim, ff = shape.intermediate;
  const int64_t layer = tokens * (12 * h + 4 * q + 4 * kv + 8 * ff);
  const int64_t in_flight = tokens * (4 * ff + 4 * h);  // the largest layer's input gradients (bf16)
  return shape.layers * layer + in_flight;
}

}  // namespace

int64_t decoder_activation_bytes(const model::ModelShape& shape, const ForwardShape& f) {
  if (f.bf16) return transformers_bf16_decoder_bytes(shape, f);
  const int64_t positions = f.rows * f.longest, h = shape.hidden;
  // The final norm's input and reciprocal RMS (and normalised input when its weight trains); during
  // the backward of a layer, the gradients of its largest tensors (the MLP's, a few hidden-sized).
  const int64_t final_norm = positions * (4 * h + 4 + (shape.lora_rank == 0 ? 4 * h : 0));
  const int64_t in_flight = positions * (8 * shape.intermediate + 16 * h);
  // Each adapter's output, freed as soon as it is added to its projection's, stays resident in the
  // heap between the tensors autograd keeps (glibc serves these sizes from the heap once a freed
  // mapping has raised its threshold); measured in mpi_plan's LoRA runs.
  int64_t adapter_outputs = 0;
  const int64_t q = shape.heads * shape.head_dim, kv = shape.kv_heads * shape.head_dim, ff = shape.intermediate;
  const std::map<std::string, int64_t> widths = {{"q_proj", q},     {"k_proj", kv},  {"v_proj", kv},   {"o_proj", h},
                                                 {"gate_proj", ff}, {"up_proj", ff}, {"down_proj", h}};
  for (const std::string& name : shape.adapted) adapter_outputs += positions * 4 * widths.at(name);
  return shape.layers * (decoder_layer_activation_bytes(shape, f) + adapter_outputs) + final_norm + in_flight;
}

int64_t activation_bytes(const model::ModelShape& shape, const ForwardShape& f) {
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

int64_t loss_bytes(const model::ModelShape& shape, int64_t global_rows, int64_t candidates) {
  // The gathered embeddings, their normalised copy and gradient (float32); the score matrix
  // with its softmax and gradient (float32, three copies).
  return global_rows * shape.hidden * 4 * 3 + global_rows * candidates * 4 * 3;
}

}  // namespace angle::plan
