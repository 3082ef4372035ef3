// Cross-rank in-batch negatives with exact gradients.
//
// Every rank gathers all ranks' embeddings (and labels) and computes the *whole* global-batch
// loss, identical on every rank. The gradient of that loss w.r.t. this rank's rows is then exactly
// the single-process gradient for those rows, so the backward of the gather just keeps this
// rank's slice (no scaling, no reduction). Each rank back-propagates its rows through its own
// encoder pass; summing the parameter gradients over ranks (reduce-scatter with SUM, never
// mean) gives the single-process parameter gradient. Anchor bugs avoided: a detached gather
// (gradient lost for remote rows, scaled by 1/W after averaging) and averaging instead of summing.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "comm/comm.h"

namespace angle::loss {

// [local rows, D] -> [global rows, D], differentiable as described above; `counts` are every
// rank's row counts (known to all ranks, so no count exchange is needed).
at::Tensor gather_rows_with_grad(const at::Tensor& local, comm::Comm& comm, const std::vector<int64_t>& counts);

}  // namespace angle::loss
