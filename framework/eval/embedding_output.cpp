#include "eval/embedding_output.h"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/atomic_output.h"
#include "core/error.h"

namespace angle::eval {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) { return s.size() >= suffix.size() && s.ends_with(suffix); }

void write_npy(const std::string& path, const at::Tensor& m) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m.size(0)) + ", " +
                       std::to_string(m.size(1)) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');  // pad so the data starts 64-byte aligned
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ANGLE_CHECK(out.good(), path, ": cannot open for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t n = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(n & 0xff));
  out.put(static_cast<char>(n >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(m.data_ptr()), static_cast<std::streamsize>(m.nbytes()));
  out.flush();
  ANGLE_CHECK(out.good(), path, ": write failed (disk full?)");
}

void write_h5(const std::string& path, const at::Tensor& m) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ANGLE_CHECK(file >= 0, path, ": cannot create HDF5 file");
  hsize_t dims[2] = {static_cast<hsize_t>(m.size(0)), static_cast<hsize_t>(m.size(1))};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t dataset = H5Dcreate2(file, "embeddings", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = dataset >= 0 ? H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data_ptr()) : -1;
  if (dataset >= 0) H5Dclose(dataset);
  H5Sclose(space);
  herr_t close_rc = H5Fclose(file);
  ANGLE_CHECK(rc >= 0 && close_rc >= 0, path, ": HDF5 write failed");
}

}  // namespace

void check_output_path(const std::string& path) {
  ANGLE_CHECK(ends_with(path, ".npy") || ends_with(path, ".h5") || ends_with(path, ".hdf5"), "--output '", path,
              "': unknown format (use .npy or .h5)");
  auto parent = std::filesystem::path(path).parent_path();
  ANGLE_CHECK(parent.empty() || std::filesystem::is_directory(parent), "--output '", path, "': directory '",
              parent.string(), "' does not exist");
}

void write_embeddings(const std::string& path, const at::Tensor& embeddings) {
  check_output_path(path);
  at::Tensor m = embeddings.to(at::kCPU, at::kFloat).contiguous();
  ANGLE_CHECK(m.dim() == 2, "embeddings must be a matrix");
  AtomicOutput output(path);
  if (ends_with(path, ".npy"))
    write_npy(output.temp_path(), m);
  else
    write_h5(output.temp_path(), m);
  output.commit();
}

}  // namespace angle::eval
