// The random generators a rank's checkpoint shard carries: "rng", the CPU generator, and, when the
// rank trains on a GPU, "rng_cuda", that GPU's default generator. Nothing in a training step draws
// from them (dropout is keyed, model/dropout.h); they are kept, per rank, for whatever may, so that
// a resumed run on any device continues the generators where the interrupted one left them.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <string>

namespace angle::ckpt {

std::map<std::string, at::Tensor> generator_states(const c10::Device& device);
// Restores the states in `saved` that apply to `device` (a GPU state saved by a CPU run does not
// exist; one saved by a GPU run resumed on the CPU is not used).
void restore_generator_states(const std::map<std::string, at::Tensor>& saved, const c10::Device& device);

}  // namespace angle::ckpt
