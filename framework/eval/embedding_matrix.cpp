#include "eval/embedding_matrix.h"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <filesystem>

#include "core/error.h"

namespace angle::eval {

EmbeddingMatrix::EmbeddingMatrix(const std::string& path) : path_(path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // our messages, not HDF5's stack dumps
  ANGLE_CHECK(std::filesystem::exists(path) && H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file (expected the .h5 that "
              "`angle embed --output FILE.h5` writes)");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ANGLE_CHECK(file_ >= 0, path, ": cannot open");
  if (H5Lexists(file_, "embeddings", H5P_DEFAULT) <= 0) {
    H5Fclose(file_);
    ANGLE_FAIL(path, ": no dataset 'embeddings' (expected the .h5 that `angle embed --output FILE.h5` writes)");
  }
  dataset_ = H5Dopen2(file_, "embeddings", H5P_DEFAULT);
  const hid_t space = H5Dget_space(dataset_), type = H5Dget_type(dataset_);
  const int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[2] = {0, 0};
  if (rank == 2) H5Sget_simple_extent_dims(space, dims, nullptr);
  const bool floating = H5Tget_class(type) == H5T_FLOAT;
  H5Sclose(space), H5Tclose(type);
  if (rank != 2 || !floating || dims[0] == 0 || dims[1] == 0) {
    H5Dclose(dataset_), H5Fclose(file_);
    ANGLE_FAIL(path, ": 'embeddings' must be a non-empty 2-d float matrix [N, D] (found ", rank, " dimensions",
               floating ? "" : ", not floating point", ")");
  }
  rows_ = static_cast<int64_t>(dims[0]), dim_ = static_cast<int64_t>(dims[1]);
}

EmbeddingMatrix::~EmbeddingMatrix() {
  if (dataset_ >= 0) H5Dclose(dataset_);
  if (file_ >= 0) H5Fclose(file_);
}

at::Tensor EmbeddingMatrix::read(int64_t first, int64_t count) const {
  ANGLE_CHECK(first >= 0 && count >= 0 && first + count <= rows_, path_, ": rows [", first, ", ", first + count,
              ") outside its ", rows_);
  at::Tensor out = at::empty({count, dim_}, at::kFloat);
  if (count == 0) return out;
  const hid_t file_space = H5Dget_space(dataset_);
  hsize_t start[2] = {static_cast<hsize_t>(first), 0}, size[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(dim_)};
  H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, size, nullptr);
  const hid_t memory = H5Screate_simple(2, size, nullptr);
  const herr_t rc = H5Dread(dataset_, H5T_NATIVE_FLOAT, memory, file_space, H5P_DEFAULT, out.data_ptr());
  H5Sclose(memory), H5Sclose(file_space);
  ANGLE_CHECK(rc >= 0, path_, ": cannot read rows [", first, ", ", first + count, ")");
  return out;
}

}  // namespace angle::eval
