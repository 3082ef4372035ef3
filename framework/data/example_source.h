// Training examples from either a prepared HDF5 file (read row by row, only the rows asked for)
// or a raw FORMAT:PATH spec (tokenized into memory at start-up).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset_file.h"

namespace angle::data {

class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual uint64_t size() const = 0;
  virtual const std::string& format() const = 0;
  virtual std::vector<Example> fetch(const std::vector<uint64_t>& indices) const = 0;
};

// `spec`: PATH.h5 (checked against the model's tokenizer and max length) or stsb:/sick:/
// snli-senteval:/... PATH. `prompt` ("{text}" template) applies to raw specs only.
std::unique_ptr<ExampleSource> open_source(const std::string& spec, const text::Tokenizer& tokenizer,
                                           const std::string& model_dir, size_t max_length, const std::string& prompt);

}  // namespace angle::data
