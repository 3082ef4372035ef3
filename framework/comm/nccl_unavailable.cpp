// Builds without CUDA/NCCL: asking for the nccl backend is a clear error.
#include "comm/comm.h"
#include "core/error.h"

namespace angle::comm {
std::unique_ptr<Comm> make_nccl_comm() {
  ANGLE_FAIL("this build of angle has no NCCL support (configure with the CUDA toolkit and the CUDA torch wheel)");
}
}  // namespace angle::comm
