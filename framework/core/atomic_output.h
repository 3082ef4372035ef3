// Outputs appear under their final name only once complete: callers write to temp_path(),
// then commit() renames it into place. If the writer throws, the destructor removes the temp
// file, so an interrupted `angle embed` never leaves a file that looks finished.
#pragma once
#include <string>

namespace angle {

class AtomicOutput {
 public:
  explicit AtomicOutput(std::string final_path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  void commit();  // fsync + rename

 private:
  std::string final_path_;
  std::string temp_path_;
  bool committed_ = false;
};

// Flushes a file or directory to disk (fsync); an error names the path.
void fsync_path(const std::string& path);

// `text` into `path` through an AtomicOutput: the file appears complete or not at all.
void write_atomically(const std::string& path, const std::string& text);

}  // namespace angle
