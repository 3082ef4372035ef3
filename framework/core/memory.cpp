#include "core/memory.h"

#include <unistd.h>

#include <fstream>

namespace angle {

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace angle
