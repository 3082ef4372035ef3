// CUDA events by number, for code that hands out plain ids (comm/stream_work.h's DeviceStreams,
// the step profile's DeviceClock): recorded on a stream, looked up, destroyed once. CUDA builds only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <unordered_map>

#include "core/error.h"

// A CUDA runtime call that must succeed: an unrecorded event would read as complete, and a stream
// that does not wait would race.
#define ANGLE_CUDA_CHECK(call)                                                                      \
  do {                                                                                              \
    const cudaError_t status_ = (call);                                                             \
    ANGLE_CHECK(status_ == cudaSuccess, "CUDA: ", #call, ": ", cudaGetErrorString(status_));        \
  } while (0)

namespace angle::comm {

class CudaEvents {
 public:
  explicit CudaEvents(unsigned flags) : flags_(flags) {}  // cudaEventDisableTiming, or cudaEventDefault to time
  CudaEvents(const CudaEvents&) = delete;
  CudaEvents& operator=(const CudaEvents&) = delete;
  ~CudaEvents() {
    for (auto& [id, event] : events_) cudaEventDestroy(event);
  }
  uint64_t record(cudaStream_t stream) {
    cudaEvent_t event;
    ANGLE_CUDA_CHECK(cudaEventCreateWithFlags(&event, flags_));
    events_.emplace(++next_, event);
    ANGLE_CUDA_CHECK(cudaEventRecord(event, stream));
    return next_;
  }
  cudaEvent_t at(uint64_t id) const { return events_.at(id); }
  void release(uint64_t id) {
    auto it = events_.find(id);
    if (it == events_.end()) return;
    cudaEventDestroy(it->second);
    events_.erase(it);
  }

 private:
  unsigned flags_;
  std::unordered_map<uint64_t, cudaEvent_t> events_;
  uint64_t next_ = 0;
};

}  // namespace angle::comm
