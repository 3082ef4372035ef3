// Reads the [N, D] float32 matrix that `angle embed --output FILE.h5` writes (dataset "embeddings"),
// a range of rows at a time, so that a corpus embedded once can be searched many times without ever
// being held whole.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace angle::eval {

class EmbeddingMatrix {
 public:
  // Checks the file: HDF5, a 2-d floating-point dataset "embeddings"; errors name the file.
  explicit EmbeddingMatrix(const std::string& path);
  ~EmbeddingMatrix();
  EmbeddingMatrix(const EmbeddingMatrix&) = delete;
  EmbeddingMatrix& operator=(const EmbeddingMatrix&) = delete;

  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  const std::string& path() const { return path_; }
  // Rows [first, first + count) as float32 [count, D].
  at::Tensor read(int64_t first, int64_t count) const;

 private:
  std::string path_;
  int64_t file_ = -1, dataset_ = -1, rows_ = 0, dim_ = 0;
};

}  // namespace angle::eval
