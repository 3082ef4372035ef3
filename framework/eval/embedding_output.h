// Writes an [N, D] float32 matrix as .npy or .h5 (dataset "embeddings"), atomically.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace angle::eval {

// The format follows the extension: .npy or .h5/.hdf5; anything else is an error raised
// before any work is done (call check_output_path first).
void check_output_path(const std::string& path);
void write_embeddings(const std::string& path, const at::Tensor& embeddings);

}  // namespace angle::eval
