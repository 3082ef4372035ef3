#include "data/example_source.h"

#include <algorithm>

#include "core/error.h"

namespace angle::data {
namespace {

// Rows [first, end) of part `part` of `parts` of `size` rows.
std::pair<int64_t, int64_t> share(uint64_t size, int part, int parts) {
  const auto n = static_cast<int64_t>(size);
  return {n * part / parts, n * (part + 1) / parts};
}

class FileSource : public ExampleSource {
 public:
  FileSource(const std::string& path, size_t max_length) : file_(path), max_length_(max_length) {
    const DatasetInfo& d = file_.info();
    info_ = {path, d.format, d.label_range, d.has_weights, static_cast<uint64_t>(d.count), d.label_min, d.label_max};
  }
  const SourceInfo& info() const override { return info_; }
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
  void check_ids(int64_t vocab, int part, int parts) const override {
    const auto [first, end] = share(info_.size, part, parts);
    file_.check_ids(vocab, first, end);
  }
  const DatasetFile& file() const { return file_; }

 private:
  DatasetFile file_;
  size_t max_length_;
  SourceInfo info_;
};

class MemorySource : public ExampleSource {
 public:
  MemorySource(SourceInfo info, std::vector<Example> examples) : info_(std::move(info)), examples_(std::move(examples)) {
    info_.size = examples_.size();
  }
  const SourceInfo& info() const override { return info_; }
  std::vector<Example> fetch(const std::vector<uint64_t>& indices) const override {
    std::vector<Example> out;
    for (uint64_t i : indices) out.push_back(examples_.at(i));
    return out;
  }
  void check_ids(int64_t vocab, int part, int parts) const override {
    const auto [first, end] = share(info_.size, part, parts);
    for (int64_t row = first; row < end; ++row)
      for (size_t c = 0; c < examples_[row].ids.size(); ++c)
        for (size_t t = 0; t < examples_[row].ids[c].size(); ++t) {
          const int64_t id = examples_[row].ids[c][t];
          ANGLE_CHECK(id >= 0 && id < vocab, info_.spec, ": column ", c + 1, ", row ", row, ", token ", t, ": id ", id,
                      " is outside the model's vocabulary [0, ", vocab, ")");
        }
  }

 private:
  SourceInfo info_;
  std::vector<Example> examples_;
};

}  // namespace

std::unique_ptr<ExampleSource> open_source(const std::string& spec, const text::Tokenizer& tokenizer,
                                           const std::string& model_dir, size_t max_length, const Prompts& prompts) {
  if (spec.ends_with(".h5") || spec.ends_with(".hdf5")) {
    auto source = std::make_unique<FileSource>(spec, max_length);
    source->file().require_tokenizer(tokenizer, model_dir);
    // Prompts are part of the token ids: the job's must be the ones the file was prepared with.
    const DatasetInfo& info = source->file().info();
    const std::vector<std::string> wanted = column_prompts(info.format, prompts, spec, "data.");
    for (size_t c = 0; c < info.columns.size(); ++c)
      ANGLE_CHECK(wanted[c].empty() || wanted[c] == info.prompts[c], spec, ": column '", info.columns[c],
                  "' was prepared with prompt '", info.prompts[c], "' but the job asks for '", wanted[c],
                  "'; prepare it again with `angle prepare --", info.format == "A" ? "text" : c == 0 ? "query" : "doc",
                  "-prompt ...` or use the raw FORMAT:PATH spec");
    return source;
  }
  auto colon = spec.find(':');
  ANGLE_CHECK(colon != std::string::npos, "training data '", spec, "': expected PATH.h5 or FORMAT:PATH");
  RawOptions options;
  options.format = spec.substr(0, colon);
  options.input = spec.substr(colon + 1);
  RawDataset raw = read_raw(options);
  const std::vector<std::string> column_prompt = column_prompts(raw.format, prompts, spec, "data.");
  std::vector<Example> examples(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    for (size_t c = 0; c < raw.texts.size(); ++c)
      examples[i].ids.push_back(tokenizer.encode_prompted(column_prompt[c], raw.texts[c][i], max_length));
    if (!raw.labels.empty()) examples[i].label = raw.labels[i];
    if (!raw.weights.empty()) examples[i].weight = raw.weights[i];
  }
  ANGLE_CHECK(!examples.empty(), spec, ": empty training set");
  auto range = raw.attributes.find("label_range");
  SourceInfo info{spec, raw.format, range == raw.attributes.end() ? "" : range->second, !raw.weights.empty(), 0};
  if (!raw.labels.empty()) {
    info.label_min = *std::min_element(raw.labels.begin(), raw.labels.end());
    info.label_max = *std::max_element(raw.labels.begin(), raw.labels.end());
  }
  return std::make_unique<MemorySource>(std::move(info), std::move(examples));
}

}  // namespace angle::data
