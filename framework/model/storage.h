// Storage that can be dropped and re-allocated while the tensors sharing it (including those
// autograd saved for backward) keep their identity and shape: FSDP's trick of resizing the storage
// to 0. The sharder frees and gathers each unit's full buffer this way (shard/flat_layout.h), and a
// model whose weights a sharder reads slice by slice starts with its parameters released
// (model/encoder.h).
#pragma once
#include <ATen/core/Tensor.h>

namespace angle::model {

void free_storage(const at::Tensor& t);
void alloc_storage(const at::Tensor& t);  // uninitialised, sized for t's elements
// Whether t's elements have memory (false for a released tensor of nonzero size).
bool has_storage(const at::Tensor& t);

}  // namespace angle::model
