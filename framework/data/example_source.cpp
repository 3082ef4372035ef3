#include "data/example_source.h"

#include "core/error.h"

namespace angle::data {
namespace {

class FileSource : public ExampleSource {
 public:
  FileSource(const std::string& path, size_t max_length) : file_(path), max_length_(max_length) {}
  uint64_t size() const override { return static_cast<uint64_t>(file_.info().count); }
  const std::string& format() const override { return file_.info().format; }
  // A file prepared with a longer max length is cut to this run's: the first pieces plus the
  // final [SEP], which is exactly what tokenizing with the shorter max length gives.
  std::vector<Example> fetch(const std::vector<uint64_t>& indices) const override {
    std::vector<Example> rows = file_.read(indices);
    for (Example& row : rows)
      for (auto& ids : row.ids)
        if (ids.size() > max_length_) {
          int64_t last = ids.back();
          ids.resize(max_length_ - 1);
          ids.push_back(last);
        }
    return rows;
  }
  const DatasetFile& file() const { return file_; }

 private:
  DatasetFile file_;
  size_t max_length_;
};

class MemorySource : public ExampleSource {
 public:
  MemorySource(std::string format, std::vector<Example> examples)
      : format_(std::move(format)), examples_(std::move(examples)) {}
  uint64_t size() const override { return examples_.size(); }
  const std::string& format() const override { return format_; }
  std::vector<Example> fetch(const std::vector<uint64_t>& indices) const override {
    std::vector<Example> out;
    for (uint64_t i : indices) out.push_back(examples_.at(i));
    return out;
  }

 private:
  std::string format_;
  std::vector<Example> examples_;
};

}  // namespace

std::unique_ptr<ExampleSource> open_source(const std::string& spec, const text::Tokenizer& tokenizer,
                                           const std::string& model_dir, size_t max_length, const std::string& prompt) {
  if (spec.ends_with(".h5") || spec.ends_with(".hdf5")) {
    auto source = std::make_unique<FileSource>(spec, max_length);
    source->file().require_tokenizer(tokenizer, model_dir);
    ANGLE_CHECK(prompt.empty(), "data.text_prompt cannot be applied to the prepared file ", spec,
                "; prepare the data with the prompt instead");
    return source;
  }
  auto colon = spec.find(':');
  ANGLE_CHECK(colon != std::string::npos, "training data '", spec, "': expected PATH.h5 or FORMAT:PATH");
  RawOptions options;
  options.format = spec.substr(0, colon);
  options.input = spec.substr(colon + 1);
  RawDataset raw = read_raw(options);
  std::vector<Example> examples(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    for (const auto& column : raw.texts) examples[i].ids.push_back(tokenizer.encode_prompted(prompt, column[i], max_length));
    if (!raw.labels.empty()) examples[i].label = raw.labels[i];
    if (!raw.weights.empty()) examples[i].weight = raw.weights[i];
  }
  ANGLE_CHECK(!examples.empty(), spec, ": empty training set");
  return std::make_unique<MemorySource>(raw.format, std::move(examples));
}

}  // namespace angle::data
