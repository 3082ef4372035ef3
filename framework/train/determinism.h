// train.deterministic: the kernels that would make two runs of one step differ on a GPU are
// replaced by deterministic ones, so that a resumed run repeats the uninterrupted one bit for bit
// (launch/gpu-check.sh, check c). On the CPU every kernel the trainer uses is deterministic already.
//   - LibTorch's deterministic-algorithms switch: cuBLAS with a fixed workspace, cuDNN without
//     benchmarking, CUDA index_add_ (the word-embedding gradient's row sums, shard/reducer.cpp)
//     through a sorted index_put_ instead of atomics; an op with no deterministic kernel fails
//     instead of running;
//   - attention through the math path (model/attention.cpp): the fused kernels' backward adds
//     with atomics.
// The cost: the math attention path's memory and time, a sort per embedding gradient, and the
// switch's filling of fresh tensors (at::empty) with NaN; gpu-check.sh measures it beside the
// default.
#pragma once

namespace angle::train {

// Call before any CUDA work: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when its first handle is made.
void set_deterministic(bool on);

}  // namespace angle::train
