#include "train/device_clock.h"

#ifdef ANGLE_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "comm/cuda_events.h"
#include "core/error.h"
#endif

namespace angle::train {

#ifdef ANGLE_WITH_CUDA
namespace {
class CudaClock : public DeviceClock {
 public:
  explicit CudaClock(c10::DeviceIndex device) : device_(device) {}
  uint64_t mark() override { return events_.record(c10::cuda::getCurrentCUDAStream(device_).stream()); }
  double seconds_between(uint64_t from, uint64_t to) override {
    ANGLE_CHECK(cudaEventSynchronize(events_.at(to)) == cudaSuccess, "CUDA: a timing event failed");
    float ms = 0;
    ANGLE_CHECK(cudaEventElapsedTime(&ms, events_.at(from), events_.at(to)) == cudaSuccess,
                "CUDA: cannot time two events");
    return ms / 1000.0;
  }
  void release(uint64_t id) override { events_.release(id); }

 private:
  c10::DeviceIndex device_;
  comm::CudaEvents events_{cudaEventDefault};
};
}  // namespace
#endif

std::unique_ptr<DeviceClock> make_device_clock(const c10::Device& device) {
#ifdef ANGLE_WITH_CUDA
  if (device.is_cuda()) return std::make_unique<CudaClock>(device.index());
#endif
  (void)device;
  return nullptr;
}

}  // namespace angle::train
