// Completion of collectives that run on a device's communication stream (NCCL), without the host
// polling: waiting for a collective makes the compute stream wait for its event on the device, so
// the host goes on queueing work and the overlap holds. The host blocks only in `host_wait` (a
// blocking collective whose result it reads, the optimizer's clip norm, the end of a step), and
// there it polls under the watchdog, so that a dead peer still ends the job.
// The device is behind `DeviceStreams` (CUDA events in comm/nccl_comm.cpp; a fake in the unit
// tests), so that this logic is tested where there is no GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "comm/comm.h"

namespace angle::comm {

class DeviceStreams {
 public:
  virtual ~DeviceStreams() = default;
  // An event behind everything queued so far on the communication stream, or on the compute stream
  // (which, once every collective was waited for, is behind them all: split communicators too).
  virtual uint64_t record_on_comm_stream() = 0;
  virtual uint64_t record_on_compute_stream() = 0;
  // The compute stream waits (on the device) for `event`; the host does not block.
  virtual void compute_waits_for(uint64_t event) = 0;
  // Whether `event` has completed; never blocks. Throws on a device or communicator error.
  virtual bool done(uint64_t event) = 0;
  virtual void release(uint64_t event) = 0;
};

// The watchdog of host waits: `timeout_s` and what to do past it (report and abort all ranks).
struct Watchdog {
  double timeout_s = 300;
  std::function<void(const CollectiveRecord&)> timed_out;
  std::function<double()> clock;  // seconds; now_seconds() when empty
  std::function<void()> pause;    // between polls; a 20 us sleep when empty
};

// Polls `event` until done; past the watchdog's timeout calls its `timed_out` with `record`.
void host_wait(DeviceStreams& streams, uint64_t event, const CollectiveRecord& record, const Watchdog& watchdog);

// A collective launched on the communication stream. `wait` orders the compute stream after it
// (device-side) and drops the tensors it kept; `test` asks without blocking.
class StreamWork : public Work {
 public:
  StreamWork(DeviceStreams& streams, CollectiveRecord record, std::vector<at::Tensor> keep);
  ~StreamWork() override;
  // Call once the collective is queued: records its completion event.
  void launched();
  bool test() override;
  void wait() override;
  // Blocks the host until the collective completed, under the watchdog.
  void wait_on_host(const Watchdog& watchdog);

 private:
  DeviceStreams& streams_;
  CollectiveRecord record_;
  std::vector<at::Tensor> keep_;
  uint64_t event_ = 0;
  bool recorded_ = false, waited_ = false;
};

}  // namespace angle::comm
