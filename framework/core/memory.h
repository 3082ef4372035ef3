#pragma once
#include <cstdint>

namespace angle {
// Resident set size of this process in bytes (from /proc/self/statm; 0 where unavailable).
uint64_t resident_bytes();
// Peak resident set size of this process in bytes (VmHWM of /proc/self/status; 0 where unavailable).
uint64_t peak_resident_bytes();
// From now on, blocks of 4 MiB and more are mapped on their own and returned to the system when
// freed. glibc otherwise raises its mmap threshold (up to 32 MiB) each time such a block is freed,
// after which blocks of that size come from the heap and stay resident: the unit-sized buffers
// that stage 3 gathers, reduces and frees every step then hold hundreds of MB (the
// BERT-base-sized model at stage 3 on 4 ranks: peak RSS 1585 MiB, 1045-1150 with this; 16 MiB
// kept 1256). The price is a page fault per page of each such block, activations included
// (README "Sharding"). A MALLOC_MMAP_THRESHOLD_ in the environment takes precedence.
void keep_large_blocks_mapped();
}  // namespace angle
