// Keyed dropout: a mask element is a function of what it drops and of nothing else: the text's
// 64-bit key (the trainer derives it from the seed, the step, the example and which text of the
// example it is: train/dropout_keys.h), the dropout site (layer and place in the layer), the token's
// position in its text and the element. Not of the rank, the other texts in the batch, the padding
// or packing layout, the micro-batch or chunk split, or a generator's state: a job trains the same
// run on 1 or 64 ranks, resumes on any world size, and gradient caching's second pass sees the
// first pass's masks without replaying a generator.
//
// The bits are Philox-4x32-10 (the generator behind cuRAND and PyTorch's CUDA dropout) under the
// text's key, counter {element / 4, position, site, head}: word element % 4 keeps when it is at least
// p * 2^32 (exact to 2^-32). On the CPU a parallel loop applies the mask in one pass and keeps a
// byte per element for the backward pass (ATen's CPU bernoulli_ is a serial Mersenne Twister on
// CPUs without MKL's path, 11% of a MiniLM step on an AMD EPYC; with a float mask per LoRA
// adapter, adapter dropout took a SmolLM2 step from 5.7 to 8.8 s); on other devices the same
// function runs as ATen integer ops, which the unit tests also hold equal to the CPU loop.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace angle::model {

// The Philox-4x32-10 block for `counter` under `key` (Salmon et al., SC'11).
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Philox blocks computed side by side for the CPU's masks: words[w][i] = word w of
// philox4x32({first + i, c1, c2, c3}, {k0, k1}), i < kPhiloxBlocks.
constexpr int kPhiloxBlocks = 16;
using PhiloxBlocks = void (*)(uint32_t first, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                              uint32_t words[4][kPhiloxBlocks]);
// The implementations this CPU runs, widest first (avx512f, avx2, scalar): the masks use the first.
std::vector<std::pair<std::string, PhiloxBlocks>> philox_block_functions();

// The rows of a mask [R, W]: row r belongs to the text with key keys[r] (a uint64 bit pattern), the
// token at `positions[r]` in it and head `heads[r]` (0 outside attention); its element c is that
// text's element c - col_start[r] (attention: the key position; elements before col_start are left
// padding, kept). All int64 [R] on the mask's device.
struct MaskRows {
  at::Tensor keys, positions, heads, col_start;
};

// The mask that x * mask drops with: 0 with probability p, else 1 / (1 - p); [R, width] in `options`.
at::Tensor keyed_mask(const MaskRows& rows, int64_t width, double p, uint32_t site, const at::TensorOptions& options);
// The same mask through ATen integer ops, on any device (the CUDA path, and the CPU loop's oracle).
at::Tensor keyed_mask_by_ops(const MaskRows& rows, int64_t width, double p, uint32_t site,
                             const at::TensorOptions& options);

// Keyed dropout over one forward pass of a batch [B, T]. Without keys (inference), or with p = 0, it
// returns its input; training with dropout and no keys is an error (a mask must be keyed).
class KeyedDropout {
 public:
  KeyedDropout() = default;
  // row_keys: int64 [B], one per text; attention_mask: int64 [B, T] (real tokens contiguous, padded
  // on either side).
  KeyedDropout(const at::Tensor& row_keys, const at::Tensor& attention_mask);

  // x [N, W]: the tokens at flat indices `flat` of the [B, T] layout (packed execution). The result
  // is in out_type (x's by default): x.to(out_type) dropped, in one pass on the CPU (a LoRA
  // adapter's float input from a bf16 base).
  at::Tensor tokens(const at::Tensor& x, double p, uint32_t site, const at::Tensor& flat,
                    std::optional<at::ScalarType> out_type = {}) const;
  // x [B, T, W]: every position of the layout.
  at::Tensor padded(const at::Tensor& x, double p, uint32_t site, std::optional<at::ScalarType> out_type = {}) const;
  // Attention probabilities [B, H, T, T] (query, key).
  at::Tensor scores(const at::Tensor& probs, double p, uint32_t site) const;

 private:
  at::Tensor apply(const at::Tensor& x, double p, uint32_t site, const MaskRows& rows, at::ScalarType out_type) const;
  at::Tensor keys_, start_;  // [B]: each text's key, the index of its first real token
  int64_t length_ = 0;
};

}  // namespace angle::model
