// Builds without CUDA/NCCL: comm/placement.h refuses the nccl backend with a clear error first.
#include "comm/comm.h"
#include "comm/placement.h"
#include "core/error.h"

namespace angle::comm {
bool nccl_built() { return false; }
std::unique_ptr<Comm> make_nccl_comm(const PlacementRequest&) {
  ANGLE_FAIL("this build of angle has no NCCL support (configure with the CUDA toolkit and the CUDA torch wheel)");
}
}  // namespace angle::comm
