#pragma once
#include <algorithm>

namespace angle::train {

// HF's get_linear_schedule_with_warmup: the factor applied to the peak lr at optimizer step
// `step` (0-based): linear warm-up from 0, then linear decay to 0 at `total` steps.
inline double linear_schedule(long step, long warmup, long total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max(1L, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max(1L, total - warmup)));
}

}  // namespace angle::train
