#include "core/atomic_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace angle {

AtomicOutput::AtomicOutput(std::string final_path)
    : final_path_(std::move(final_path)),
      temp_path_(final_path_ + ".tmp-" + std::to_string(::getpid())) {
  auto parent = std::filesystem::path(final_path_).parent_path();
  ANGLE_CHECK(parent.empty() || std::filesystem::is_directory(parent), final_path_,
              ": output directory '", parent.string(), "' does not exist");
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) std::remove(temp_path_.c_str());
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  ANGLE_CHECK(fd >= 0, path, ": cannot open to sync: ", std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  ANGLE_CHECK(rc == 0, path, ": fsync failed (disk full or I/O error): ", std::strerror(errno));
}

void AtomicOutput::commit() {
  fsync_path(temp_path_);
  ANGLE_CHECK(std::rename(temp_path_.c_str(), final_path_.c_str()) == 0, final_path_,
              ": cannot rename from ", temp_path_, ": ", std::strerror(errno));
  committed_ = true;
}

void write_atomically(const std::string& path, const std::string& text) {
  AtomicOutput output(path);
  {
    std::ofstream out(output.temp_path());
    out << text;
    ANGLE_CHECK(out.good(), path, ": cannot write");
  }
  output.commit();
}

}  // namespace angle
