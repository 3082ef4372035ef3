#include "ckpt/generator_states.h"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>

namespace angle::ckpt {

std::map<std::string, at::Tensor> generator_states(const c10::Device& device) {
  std::map<std::string, at::Tensor> states = {{"rng", at::globalContext().defaultGenerator(at::kCPU).get_state()}};
  if (device.is_cuda()) states["rng_cuda"] = at::globalContext().defaultGenerator(device).get_state();
  return states;
}

void restore_generator_states(const std::map<std::string, at::Tensor>& saved, const c10::Device& device) {
  if (auto it = saved.find("rng"); it != saved.end()) {
    at::Generator cpu = at::globalContext().defaultGenerator(at::kCPU);
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(it->second);
  }
  if (auto it = saved.find("rng_cuda"); it != saved.end() && device.is_cuda()) {
    at::Generator gpu = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gpu.mutex());
    gpu.set_state(it->second);
  }
}

}  // namespace angle::ckpt
