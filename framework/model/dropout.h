// Dropout for CPU training. ATen's CPU dropout draws its mask with bernoulli_, which on CPUs other
// than Intel's (no MKL path) is a serial Mersenne Twister loop: about 9 ns per element, 11% of a
// MiniLM training step on an AMD EPYC (tests/bench/step_replica_profile.py). Here the mask comes from
// Philox-4x32-10 keyed by one 64-bit seed drawn from the default generator, in parallel: the
// same distribution, a different stream, and still reproducible from the generator's state
// (gradient caching replays a chunk by restoring that state, train/encode.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace angle::model {

// The Philox-4x32-10 block for `counter` under `key` (Salmon et al., SC'11; the generator behind
// cuRAND's and PyTorch's CUDA dropout).
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// The mask `x * mask` drops with: 0 with probability p, else 1 / (1 - p); x's shape and dtype.
at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed);

// Dropout in training: x unchanged when p is 0; on the CPU, x * dropout_mask (autograd keeps the
// mask, as at::dropout's does); elsewhere at::dropout (fused on CUDA).
at::Tensor dropout(const at::Tensor& x, double p);

}  // namespace angle::model
