#pragma once
#include <cstdint>

namespace angle {
// Resident set size of this process in bytes (from /proc/self/statm; 0 where unavailable).
uint64_t resident_bytes();
// Peak resident set size of this process in bytes (VmHWM of /proc/self/status; 0 where unavailable).
uint64_t peak_resident_bytes();
}  // namespace angle
