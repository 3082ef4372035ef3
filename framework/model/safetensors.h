// Reader and writer for the safetensors format (8-byte little-endian header length, JSON header,
// raw little-endian data). Our own parser so that every offset is bounds-checked before use and
// no pickle is ever loaded. Tensors are read with pread, not mapped: only what is read is ever
// resident, and none of the file stays in this process's RSS (a sharder reads its slices only).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace angle::model {

struct TensorInfo {
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

class SafetensorsFile {
 public:
  // Validates the header and every tensor's byte range against the file size.
  explicit SafetensorsFile(std::string path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // A copy of the tensor in its stored dtype.
  at::Tensor load(const std::string& name) const;
  // Elements [first, first + count) of the tensor, flattened, in its stored dtype (1-D).
  at::Tensor load_range(const std::string& name, int64_t first, int64_t count) const;
  // Elements [first, first + out.numel()) into `out`, converted to its dtype and device (read
  // straight into it when it is contiguous CPU memory of the stored dtype).
  void read_range(const std::string& name, int64_t first, const at::Tensor& out) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  struct File {  // closed also when the constructor fails
    int fd = -1;
    ~File();
  } fd_;
  uint64_t data_offset_ = 0;  // where the data section starts in the file
  const TensorInfo& info(const std::string& name) const;
};

// Writes tensors (made contiguous, CPU) under their names; `metadata` goes into "__metadata__".
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace angle::model
