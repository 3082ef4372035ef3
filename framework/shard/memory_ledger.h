// Bytes of the model-state tensors the sharder owns (parameters, gradients, optimizer state),
// counted as they are allocated and freed, with the peak of their sum since the last reset.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

namespace angle::shard {

class MemoryLedger {
 public:
  enum Kind { kParams = 0, kGrads = 1, kOptim = 2 };
  void add(Kind kind, int64_t bytes) {
    live_[kind] += bytes;
    const int64_t total = live_[0] + live_[1] + live_[2];
    if (total > peak_total_) peak_total_ = total, at_peak_ = live_;
  }
  void sub(Kind kind, int64_t bytes) { live_[kind] -= bytes; }
  int64_t live(Kind kind) const { return live_[kind]; }
  int64_t peak() const { return peak_total_; }
  // Each kind's bytes at the moment of the peak.
  int64_t at_peak(Kind kind) const { return at_peak_[kind]; }
  void reset_peak() { peak_total_ = live_[0] + live_[1] + live_[2], at_peak_ = live_; }

 private:
  std::array<int64_t, 3> live_{}, at_peak_{};
  int64_t peak_total_ = 0;
};

}  // namespace angle::shard
