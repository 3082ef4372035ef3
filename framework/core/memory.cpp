#include "core/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>

#include <fstream>
#include <string>

namespace angle {

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

void keep_large_blocks_mapped() {
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

uint64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  uint64_t kib = 0;
  while (status >> key) {
    if (key == "VmHWM:" && status >> kib) return kib * 1024;
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace angle
