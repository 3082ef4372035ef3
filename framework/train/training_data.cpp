#include "train/training_data.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "core/text_file.h"
#include "data/raw_dataset.h"
#include "train/dropout_keys.h"

namespace angle::train {
namespace {

// One comma-separated list entry per training set, each a finite number >= 0 (empty list: none).
std::vector<double> per_source_numbers(const std::string& key, const std::string& list, size_t sources) {
  std::vector<double> values;
  if (list.empty()) return values;
  for (const std::string& item : split(list, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    ANGLE_CHECK(!item.empty() && *end == '\0' && std::isfinite(v) && v >= 0, key, ": '", item,
                "' is not a finite number >= 0");
    values.push_back(v);
  }
  ANGLE_CHECK(values.size() == sources, key, " has ", values.size(), " entries for ", sources,
              " training sets (data.train)");
  return values;
}

}  // namespace

TrainingData::TrainingData(const JobConfig& c, const text::Tokenizer& tokenizer, size_t max_length,
                           uint64_t dropout_salt)
    : dropout_seed_(mix_key(c.seed, dropout_salt)) {
  const data::Prompts prompts{c.text_prompt, c.query_prompt, c.doc_prompt};
  std::vector<uint64_t> sizes;
  for (const std::string& spec : split(c.train, ',')) {
    sources_.push_back(data::open_source(spec, tokenizer, c.model_path, max_length, prompts));
    const data::SourceInfo& info = sources_.back()->info();
    ANGLE_CHECK(c.format == DataFormat::any || info.format == to_string(c.format), spec, ": format ", info.format,
                " data, but the job says data.format = ", c.format);
    ANGLE_CHECK(info.format == sources_.front()->info().format, spec, ": format ", info.format, ", but ",
                sources_.front()->info().spec, " is format ", sources_.front()->info().format,
                ": one job trains on one format");
    sizes.push_back(info.size);
  }
  format_name_ = sources_.front()->info().format;
  format_ = loss::parse_format(format_name_);

  const std::vector<double> mix = c.mix_weights.empty() ? std::vector<double>{}
                                                        : per_source_numbers("data.mix_weights", c.mix_weights, sizes.size());
  sampler_ = std::make_unique<data::GlobalSampler>(sizes, mix, c.seed, static_cast<uint64_t>(c.global_batch));

  const std::vector<double> source_weights = per_source_numbers("data.source_weights", c.source_weights, sources_.size());
  const std::vector<std::string> ranges = split(c.label_ranges, ',');
  ANGLE_CHECK(c.label_ranges.empty() || ranges.size() == sources_.size(), "data.label_ranges has ", ranges.size(),
              " entries for ", sources_.size(), " training sets (data.train)");
  ANGLE_CHECK((c.label_ranges.empty() && c.label_norm == LabelNorm::none) || format_ == loss::Format::A,
              "data.label_norm/label_ranges: format ", format_name_, " data has no labels");
  bool any_confidence = false;
  std::vector<std::pair<std::string, std::string>> known;  // (set, label range) where the range is known
  std::vector<std::string> unknown;                        // sets whose label range is unknown
  for (size_t d = 0; d < sources_.size(); ++d) {
    const data::SourceInfo& info = sources_[d]->info();
    Adjust& a = adjust_.emplace_back();
    if (!source_weights.empty()) a.weight = source_weights[d];
    a.confidence = c.weight_mode == WeightMode::confidence && info.has_weights;
    any_confidence |= a.confidence;
    if (format_ != loss::Format::A) continue;
    const bool overridden = !c.label_ranges.empty() && !ranges[d].empty();
    const std::string range = overridden ? ranges[d] : info.label_range;
    const std::string where = overridden ? "data.label_ranges entry " + std::to_string(d + 1) + " (" + info.spec + ")"
                                         : info.spec;
    if (range.empty()) unknown.push_back(info.spec);
    else known.emplace_back(info.spec, range);
    if (c.label_norm != LabelNorm::range) continue;
    ANGLE_CHECK(!range.empty(), info.spec, ": data.label_norm = range, but its label range is unknown; give it in "
                "data.label_ranges (or prepare the file with --label-range MIN:MAX)");
    const auto [low, high] = data::parse_label_range(where, range);
    ANGLE_CHECK(info.label_min >= low && info.label_max <= high, where, ": labels span [", info.label_min, ", ",
                info.label_max, "], outside the label range ", range);
    a.label_low = low, a.label_scale = 1.0 / (high - low);
  }
  // Ranking terms compare labels across sets: different (or unknown next to known) scales must be
  // normalised first.
  if (c.label_norm == LabelNorm::none && sources_.size() > 1 && !known.empty()) {
    ANGLE_CHECK(unknown.empty(), unknown.front(), ": label range unknown, next to ", known.front().first, " (",
                known.front().second, "); give every set's range (data.label_ranges) and set data.label_norm = range, "
                "or prepare with --label-range");
    for (const auto& [spec, range] : known)
      ANGLE_CHECK(range == known.front().second, spec, ": labels on the scale ", range, ", but ", known.front().first,
                  "'s are on ", known.front().second, "; set data.label_norm = range to map every set to [0, 1]");
  }
  ANGLE_CHECK(c.weight_mode != WeightMode::confidence || any_confidence, "data.weight_mode = confidence, but no "
              "training set has per-example weights (prepare with --columns ...,weight=COLUMN)");
  weighted_ = c.weight_mode == WeightMode::confidence || !source_weights.empty();
}

void TrainingData::check_ids(int64_t vocab, int rank, int world) const {
  for (const auto& source : sources_) source->check_ids(vocab, rank, world);
}

std::vector<std::vector<data::Example>> TrainingData::rank_slices(long step, int rank, int world, size_t micro,
                                                                 long shift) const {
  const std::vector<data::ExampleRef> refs = sampler_->global_batch(static_cast<uint64_t>(step - 1 - shift));
  std::vector<std::vector<data::Example>> micro_batches;
  for (size_t start = 0; start < refs.size(); start += micro) {
    const size_t size = std::min(micro, refs.size() - start);
    auto [begin, end] = data::GlobalSampler::rank_slice(size, rank, world);
    std::vector<data::Example> examples(end - begin);
    for (size_t d = 0; d < sources_.size(); ++d) {
      std::vector<uint64_t> indices;
      std::vector<size_t> slots;
      for (size_t i = begin; i < end; ++i)
        if (refs[start + i].dataset == d) indices.push_back(refs[start + i].index), slots.push_back(i - begin);
      if (indices.empty()) continue;
      std::vector<data::Example> rows = sources_[d]->fetch(indices);
      const Adjust& a = adjust_[d];
      for (size_t k = 0; k < rows.size(); ++k) {
        data::Example& e = examples[slots[k]];
        e = std::move(rows[k]);
        e.label = static_cast<float>((e.label - a.label_low) * a.label_scale);
        e.weight = static_cast<float>(a.weight * (a.confidence ? e.weight : 1.0));
        e.dropout_key = example_dropout_key(dropout_seed_, step, d, indices[k]);
      }
    }
    micro_batches.push_back(std::move(examples));
  }
  return micro_batches;
}

}  // namespace angle::train
