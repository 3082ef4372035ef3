#include "comm/stream_work.h"

#include <chrono>
#include <thread>
#include <utility>

#include "core/log.h"

namespace angle::comm {

void host_wait(DeviceStreams& streams, uint64_t event, const CollectiveRecord& record, const Watchdog& watchdog) {
  auto clock = [&] { return watchdog.clock ? watchdog.clock() : now_seconds(); };
  const double start = clock();
  while (!streams.done(event)) {
    if (clock() - start > watchdog.timeout_s) watchdog.timed_out(record);
    if (watchdog.pause)
      watchdog.pause();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

StreamWork::StreamWork(DeviceStreams& streams, CollectiveRecord record, std::vector<at::Tensor> keep)
    : streams_(streams), record_(std::move(record)), keep_(std::move(keep)) {}

StreamWork::~StreamWork() {
  if (!recorded_) return;
  if (!waited_) streams_.compute_waits_for(event_);  // the kept tensors' memory is reused on the compute stream
  streams_.release(event_);
}

void StreamWork::launched() {
  event_ = streams_.record_on_comm_stream();
  recorded_ = true;
}

bool StreamWork::test() { return waited_ || streams_.done(event_); }

void StreamWork::wait() {
  if (waited_) return;
  streams_.compute_waits_for(event_);
  // The compute stream now runs after the collective: memory the kept tensors free is reused by
  // compute-stream work queued after this point only (the caching allocator's per-stream reuse).
  keep_.clear();
  waited_ = true;
}

void StreamWork::wait_on_host(const Watchdog& watchdog) {
  host_wait(streams_, event_, record_, watchdog);
  wait();
}

}  // namespace angle::comm
