#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace angle::model {
namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}
const DtypeInfo* find_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// Reads `size` bytes at `offset`, all of them (pread may return fewer).
void read_exactly(int fd, void* out, uint64_t size, uint64_t offset, const std::string& path) {
  auto* bytes = static_cast<uint8_t*>(out);
  while (size > 0) {
    const ssize_t got = ::pread(fd, bytes, size, static_cast<off_t>(offset));
    ANGLE_CHECK(got > 0, path, ": read of ", size, " bytes at offset ", offset, " failed: ",
                got == 0 ? "unexpected end of file" : std::strerror(errno));
    bytes += got, size -= static_cast<uint64_t>(got), offset += static_cast<uint64_t>(got);
  }
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  fd_.fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ANGLE_CHECK(fd_.fd >= 0, path_, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  ::fstat(fd_.fd, &st);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  ANGLE_CHECK(file_size >= 8, path_, ": truncated safetensors file (", file_size, " bytes, no header)");
  uint8_t length[8];
  read_exactly(fd_.fd, length, 8, 0, path_);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length[i];
  ANGLE_CHECK(header_size <= file_size - 8, path_, ": header length ", header_size,
              " runs past the end of the file (", file_size, " bytes): truncated or not safetensors");
  std::string text(header_size, '\0');
  read_exactly(fd_.fd, text.data(), header_size, 8, path_);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    ANGLE_FAIL(path_, ": header is not valid JSON");
  }
  ANGLE_CHECK(header.is_object(), path_, ": header is not a JSON object");
  data_offset_ = 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : entry.items())
        if (v.is_string()) metadata_[k] = v.get<std::string>();
      continue;
    }
    ANGLE_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
                path_, ": tensor '", name, "' lacks dtype, shape or data_offsets");
    TensorInfo info;
    try {
      info.dtype = entry["dtype"].get<std::string>();
      info.shape = entry["shape"].get<std::vector<int64_t>>();
      auto offsets = entry["data_offsets"].get<std::vector<uint64_t>>();
      ANGLE_CHECK(offsets.size() == 2, path_, ": tensor '", name, "': data_offsets must have two entries");
      info.begin = offsets[0];
      info.end = offsets[1];
    } catch (const nlohmann::json::exception&) {
      ANGLE_FAIL(path_, ": tensor '", name, "' has a malformed dtype, shape or data_offsets");
    }
    const DtypeInfo* dtype = find_dtype(info.dtype);
    ANGLE_CHECK(dtype, path_, ": tensor '", name, "' has unsupported dtype ", info.dtype);
    ANGLE_CHECK(info.begin <= info.end && info.end <= data_size, path_, ": tensor '", name, "' data_offsets [",
                info.begin, ", ", info.end, "] lie past the end of the data (", data_size,
                " bytes): file truncated or corrupt");
    uint64_t numel = 1;
    for (int64_t d : info.shape) {
      ANGLE_CHECK(d >= 0 && (d == 0 || numel <= UINT64_MAX / static_cast<uint64_t>(d)), path_, ": tensor '", name,
                  "' has an invalid shape");
      numel *= static_cast<uint64_t>(d);
    }
    ANGLE_CHECK(numel * dtype->bytes == info.end - info.begin, path_, ": tensor '", name, "' occupies ",
                info.end - info.begin, " bytes but its shape and dtype need ", numel * dtype->bytes);
    tensors_.emplace(name, std::move(info));
  }
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::File::~File() {
  if (fd >= 0) ::close(fd);
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  ANGLE_CHECK(it != tensors_.end(), path_, ": no tensor named '", name, "'");
  return it->second;
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  const TensorInfo& info = this->info(name);
  at::Tensor out = at::empty(info.shape, at::TensorOptions().dtype(find_dtype(info.dtype)->type));
  read_exactly(fd_.fd, out.data_ptr(), info.end - info.begin, data_offset_ + info.begin, path_);
  return out;
}

at::Tensor SafetensorsFile::load_range(const std::string& name, int64_t first, int64_t count) const {
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(find_dtype(info(name).dtype)->type));
  read_range(name, first, out);
  return out;
}

void SafetensorsFile::read_range(const std::string& name, int64_t first, const at::Tensor& out) const {
  const TensorInfo& info = this->info(name);
  const DtypeInfo& stored = *find_dtype(info.dtype);
  const auto numel = static_cast<int64_t>((info.end - info.begin) / stored.bytes), count = out.numel();
  ANGLE_CHECK(first >= 0 && first + count <= numel, path_, ": elements [", first, ", ", first + count,
              ") of tensor '", name, "' lie outside its ", numel);
  const uint64_t offset = data_offset_ + info.begin + static_cast<uint64_t>(first) * stored.bytes;
  if (out.is_cpu() && out.is_contiguous() && out.scalar_type() == stored.type) {  // straight into place
    read_exactly(fd_.fd, out.data_ptr(), static_cast<uint64_t>(count) * stored.bytes, offset, path_);
    return;
  }
  at::Tensor raw = at::empty({count}, at::TensorOptions().dtype(stored.type));
  read_exactly(fd_.fd, raw.data_ptr(), static_cast<uint64_t>(count) * stored.bytes, offset, path_);
  out.copy_(raw.view(out.sizes()));
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const DtypeInfo* dtype = find_dtype(t.scalar_type());
    ANGLE_CHECK(dtype, path, ": cannot store tensor '", name, "' of dtype ", t.scalar_type());
    uint64_t size = static_cast<uint64_t>(t.numel()) * dtype->bytes;
    header[name] = {{"dtype", dtype->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    contiguous.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data section to 8 bytes
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ANGLE_CHECK(out.good(), path, ": cannot open for writing");
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const at::Tensor& t : contiguous)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  out.flush();
  ANGLE_CHECK(out.good(), path, ": write failed (disk full?)");
}

}  // namespace angle::model
