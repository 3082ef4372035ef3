// What the caching allocator holds on a rank's GPU: bytes in live tensors and bytes reserved from
// the driver, now and at their peaks since the run began (c10's CUDA allocator statistics). The
// metrics put them beside host RSS; `angle plan`'s per-rank peak predicts the allocated one.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>

namespace angle::train {

struct DeviceMemory {
  int64_t allocated = 0, reserved = 0, peak_allocated = 0, peak_reserved = 0;
};

// nullopt for the CPU and in builds without CUDA.
std::optional<DeviceMemory> device_memory(const c10::Device& device);

}  // namespace angle::train
