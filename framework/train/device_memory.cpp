#include "train/device_memory.h"

#ifdef ANGLE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace angle::train {

std::optional<DeviceMemory> device_memory(const c10::Device& device) {
#ifdef ANGLE_WITH_CUDA
  if (!device.is_cuda()) return std::nullopt;
  using c10::CachingAllocator::StatType;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  const auto all = static_cast<size_t>(StatType::AGGREGATE);
  return DeviceMemory{stats.allocated_bytes[all].peak, stats.reserved_bytes[all].peak};
#else
  (void)device;
  return std::nullopt;
#endif
}

}  // namespace angle::train
