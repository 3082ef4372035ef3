// Training examples from either a prepared HDF5 file (read row by row, only the rows asked for)
// or a raw FORMAT:PATH spec (tokenized into memory at start-up).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset_file.h"

namespace angle::data {

struct SourceInfo {
  std::string spec, format;  // format A, B or C
  std::string label_range;   // "MIN:MAX" when known, else ""
  bool has_weights = false;  // per-example weights (LLM confidences) stored
  uint64_t size = 0;
  float label_min = 0, label_max = 0;  // the extreme labels (format A)
};

class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual const SourceInfo& info() const = 0;
  virtual std::vector<Example> fetch(const std::vector<uint64_t>& indices) const = 0;
  // Every token id of rows [size x part / parts, size x (part + 1) / parts) in [0, vocab): each
  // rank checks its share at start-up, so that a bad id stops the job before its first step, not
  // when the sampler draws it. An error names the file, the column, the row and the token.
  virtual void check_ids(int64_t vocab, int part, int parts) const = 0;
};

// `spec`: PATH.h5 (checked against the model's tokenizer, max length and the job's prompts) or
// stsb:/sick:/snli-senteval:/jsonl:/... PATH (tokenized with the job's prompts).
std::unique_ptr<ExampleSource> open_source(const std::string& spec, const text::Tokenizer& tokenizer,
                                           const std::string& model_dir, size_t max_length, const Prompts& prompts);

}  // namespace angle::data
