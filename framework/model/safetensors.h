// Reader and writer for the safetensors format (8-byte little-endian header length, JSON header,
// raw little-endian data). Our own parser so that every offset is bounds-checked before use and
// no pickle is ever loaded.
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
  // A copy of the tensor in its stored dtype (owning memory, independent of the mapping).
  at::Tensor load(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  const uint8_t* data_ = nullptr;  // start of the data section inside the mapping
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
};

// Writes tensors (made contiguous, CPU) under their names; `metadata` goes into "__metadata__".
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace angle::model
