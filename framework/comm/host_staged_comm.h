// A communicator for device tensors over a backend that moves host tensors (MPI): every
// collective copies its tensors into host buffers (pinned where the device is CUDA), runs there,
// and copies the results back. Slow by design: it lets several ranks share one GPU, to test the
// multi-rank logic on one card (train.host_staging). Asynchronous collectives copy back when
// waited for.
#pragma once
#include <memory>

#include "comm/comm.h"

namespace angle::comm {

// `inner` moves host tensors; `device` is where the caller's tensors live (the CPU too: the copies
// are made all the same, which is how the CPU tests cover this path).
std::unique_ptr<Comm> make_host_staged(std::unique_ptr<Comm> inner, at::Device device);

}  // namespace angle::comm
