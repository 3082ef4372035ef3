// The HDF5 dataset schema of `angle prepare` (documented in datasets/README.md): token ids per
// text column stored ragged (ids + offsets), labels, optional weights and raw text, and
// attributes (schema version, tokenizer fingerprint, max length, source checksums, counts).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/raw_dataset.h"
#include "text/tokenizer.h"

namespace angle::data {

constexpr int64_t kSchemaVersion = 1;

struct DatasetInfo {
  std::string path, format, tokenizer, tokenizer_source;
  std::vector<std::string> columns;
  std::vector<std::string> prompts;  // per column: the template applied at preparation, or ""
  std::string label_range;           // "MIN:MAX" when known (declared or the public format's scale)
  int64_t schema_version = 0, count = 0, max_length = 0;
  bool has_labels = false, has_weights = false;
  float label_min = 0, label_max = 0;  // the extreme labels, when there are labels
};

// One example: token ids per column (in column order), label (format A) and weight (1 if none);
// in training, the example's dropout key (train/dropout_keys.h).
struct Example {
  std::vector<std::vector<int64_t>> ids;
  float label = 0, weight = 1;
  uint64_t dropout_key = 0;
};

// Tokenizes (with raw.prompts, when given) and writes `raw` to `path` (via a temporary name,
// renamed when complete).
DatasetInfo write_dataset(const std::string& path, const RawDataset& raw, const text::Tokenizer& tokenizer,
                          const std::string& tokenizer_source, size_t max_length, bool keep_text);

class DatasetFile {
 public:
  // Validates the file: HDF5, our schema (not from the future), consistent offsets.
  explicit DatasetFile(const std::string& path);
  ~DatasetFile();
  DatasetFile(const DatasetFile&) = delete;
  DatasetFile& operator=(const DatasetFile&) = delete;

  const DatasetInfo& info() const { return info_; }
  // Error naming both tokenizers unless the file was prepared with `tokenizer`.
  void require_tokenizer(const text::Tokenizer& tokenizer, const std::string& model_dir) const;
  // Reads only the requested rows (one hyperslab selection per column).
  std::vector<Example> read(const std::vector<uint64_t>& indices) const;
  // Every token id of examples [first, end) in [0, vocab), read in blocks; an error names the
  // file, the column, the row (example) and the token.
  void check_ids(int64_t vocab, int64_t first, int64_t end) const;

 private:
  DatasetInfo info_;
  int64_t file_ = -1;
  std::vector<std::vector<int64_t>> offsets_;  // per column, count + 1
  std::vector<float> labels_, weights_;
};

}  // namespace angle::data
