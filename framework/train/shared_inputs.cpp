#include "train/shared_inputs.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/text_file.h"

namespace angle::train {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHostChars = 64;  // gathered per rank (a longer host name is cut)

// Size and a 64-bit FNV-1a checksum of the first and the last 64 KiB (-1, 0 when missing): cheap on
// a many-GB file, and it sees a header, an appended or a cut-off tail, an edited first or last line.
std::pair<int64_t, int64_t> file_signature(const std::string& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return {-1, 0};
  const auto size = static_cast<int64_t>(fs::file_size(path, error));
  constexpr int64_t kPart = 64 << 10;
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes(kPart);
  uint64_t h = 1469598103934665603ULL;
  for (const int64_t offset : {int64_t{0}, std::max(kPart, size - kPart)}) {
    if (offset >= size && offset > 0) break;
    in.seekg(offset);
    in.read(bytes.data(), kPart);
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ULL;
    in.clear();
  }
  return {size, static_cast<int64_t>(h >> 1)};
}

// The regular files of `path` (itself when a file, the files directly in it when a directory).
void add_files(const std::string& path, std::vector<std::string>& out) {
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    out.push_back(path);
    return;
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(path, error))
    if (entry.is_regular_file(error)) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());  // the same order on every rank
  out.insert(out.end(), files.begin(), files.end());
}

// One flag per rank, known to every rank.
std::vector<int64_t> gather_flags(comm::Comm& comm, bool flag) {
  at::Tensor all = comm.all_gather_rows(at::full({1}, flag ? 1 : 0, at::kLong).to(comm.device())).cpu();
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

std::vector<std::string> all_hostnames(comm::Comm& comm) {
  char host[kHostChars * 8 + 1] = {0};
  ::gethostname(host, sizeof host - 1);
  at::Tensor local = at::zeros({kHostChars}, at::kLong);
  for (int64_t i = 0; i < kHostChars && host[i]; ++i) local[i] = static_cast<int64_t>(host[i]);
  at::Tensor all = comm.all_gather_rows(local.to(comm.device())).cpu();
  std::vector<std::string> hosts;
  for (int r = 0; r < comm.size(); ++r) {
    std::string name;
    for (int64_t i = 0; i < kHostChars && all[r * kHostChars + i].item<int64_t>(); ++i)
      name.push_back(static_cast<char>(all[r * kHostChars + i].item<int64_t>()));
    hosts.push_back(name);
  }
  return hosts;
}

void check_shared_output_dir(comm::Comm& comm, const std::string& dir, const std::vector<std::string>& hosts) {
  if (comm.size() == 1) return;
  // A token only this run knows: a probe left by an earlier run cannot pass for this one's.
  at::Tensor token = at::full({1}, static_cast<int64_t>(std::chrono::steady_clock::now().time_since_epoch().count() ^
                                                        (static_cast<int64_t>(::getpid()) << 32)) & INT64_MAX,
                              at::kLong).to(comm.device());
  comm.broadcast(token, 0);
  const std::string text = std::to_string(token.cpu().item<int64_t>());
  const fs::path probe = fs::path(dir) / (".probe-" + text);
  auto rank_probe = [&](int r) { return fs::path(probe.string() + ".rank-" + std::to_string(r)); };
  if (comm.rank() == 0) {
    fs::create_directories(dir);
    std::ofstream(probe) << text;
  }
  comm.barrier();
  std::error_code error;
  const bool sees_rank0 = comm.rank() == 0 || read_all(probe) == text;
  if (comm.rank() != 0 && fs::is_directory(dir, error)) std::ofstream(rank_probe(comm.rank())) << text;
  const std::vector<int64_t> read_ok = gather_flags(comm, sees_rank0);
  comm.barrier();
  std::vector<bool> seen(comm.size(), true);
  if (comm.rank() == 0)
    for (int r = 1; r < comm.size(); ++r) seen[r] = read_all(rank_probe(r)) == text;
  at::Tensor written = at::zeros({comm.size()}, at::kLong);
  for (int r = 0; r < comm.size(); ++r) written[r] = seen[r] ? 1 : 0;
  written = written.to(comm.device());
  comm.broadcast(written, 0);
  written = written.cpu();
  comm.barrier();
  if (comm.rank() == 0)
    for (int r = 0; r < comm.size(); ++r) fs::remove(r == 0 ? probe : rank_probe(r), error);
  for (int r = 1; r < comm.size(); ++r)
    ANGLE_CHECK(read_ok[r] && written[r].item<int64_t>(), "run.output_dir ", dir, " is not shared: rank ", r, " (host ",
                hosts[r], ") ", read_ok[r] ? "wrote a file that rank 0 (host " + hosts[0] + ") does not see"
                                           : "does not see the file rank 0 (host " + hosts[0] + ") wrote",
                "; every rank must see the same directory (a shared file system), not a node-local path");
}

void check_same_files(comm::Comm& comm, const std::vector<std::string>& paths, const std::vector<std::string>& hosts) {
  if (comm.size() == 1 || paths.empty()) return;
  at::Tensor local = at::zeros({static_cast<int64_t>(2 * paths.size())}, at::kLong);
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto [size, checksum] = file_signature(paths[i]);
    local[2 * i] = size, local[2 * i + 1] = checksum;
  }
  at::Tensor all = comm.all_gather_rows(local.to(comm.device())).cpu().view({comm.size(), -1});
  auto seen_by = [&](int r, size_t i) {
    const int64_t size = all[r][2 * i].item<int64_t>();
    return size < 0 ? std::string("no such file") : std::to_string(size) + " bytes, head and tail checksum " +
                                                         std::to_string(all[r][2 * i + 1].item<int64_t>());
  };
  for (int r = 1; r < comm.size(); ++r)
    for (size_t i = 0; i < paths.size(); ++i)
      ANGLE_CHECK(at::equal(all[r].narrow(0, static_cast<int64_t>(2 * i), 2), all[0].narrow(0, static_cast<int64_t>(2 * i), 2)), paths[i],
                  " differs between ranks: rank ", r, " (host ", hosts[r], ") sees ", seen_by(r, i), ", rank 0 (host ",
                  hosts[0], ") ", seen_by(0, i), "; every rank must read the same files");
}

std::vector<std::string> job_input_files(const JobConfig& c) {
  std::vector<std::string> files;
  for (const std::string& list : {c.train, c.dev, c.test})
    for (const std::string& spec : split(list, ',')) {
      if (spec.empty()) continue;
      const auto colon = spec.find(':');
      add_files(spec.ends_with(".h5") || spec.ends_with(".hdf5") || colon == std::string::npos ? spec
                                                                                                : spec.substr(colon + 1),
                files);
    }
  add_files(c.model_path, files);
  return files;
}

}  // namespace angle::train
