// What the caching allocator held on a rank's GPU at its peaks since the run began: bytes in live
// tensors and bytes reserved from the driver (c10's CUDA allocator statistics). The
// metrics put them beside host RSS; `angle plan`'s per-rank peak predicts the allocated one.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>

namespace angle::train {

struct DeviceMemory {
  int64_t peak_allocated = 0, peak_reserved = 0;
};

// nullopt for the CPU and in builds without CUDA.
std::optional<DeviceMemory> device_memory(const c10::Device& device);

}  // namespace angle::train
