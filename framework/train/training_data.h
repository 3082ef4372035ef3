// The data phase of a step: a job's training sets, their world-size-invariant sampler, and each
// example's final label and weight (the rules are in datasets/README.md, "Labels and weights").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/example_source.h"
#include "data/sampler.h"
#include "loss/angle_loss.h"
#include "train/job_config.h"

namespace angle::train {

class TrainingData {
 public:
  // Opens every set of data.train (all of one format, matching data.format when given) and checks
  // data.mix_weights, source_weights and label ranges: errors name the key or the file.
  // `dropout_salt` (tests only) changes every dropout key.
  TrainingData(const JobConfig& c, const text::Tokenizer& tokenizer, size_t max_length, uint64_t dropout_salt = 0);

  loss::Format format() const { return format_; }
  const std::string& format_name() const { return format_name_; }
  // Whether the loss takes per-example weights (data.weight_mode = confidence or source weights).
  bool weighted() const { return weighted_; }
  const data::GlobalSampler& sampler() const { return *sampler_; }
  // Every token id of this rank's share of every set in [0, vocab) (data/example_source.h).
  void check_ids(int64_t vocab, int rank, int world) const;

  // This rank's contiguous slice of every micro-batch (of `micro` examples) of optimizer step
  // `step` (1-based), with final labels, weights and dropout keys. `shift` moves the data order back (only the
  // negative-control test of resume uses it).
  std::vector<std::vector<data::Example>> rank_slices(long step, int rank, int world, size_t micro, long shift = 0) const;

 private:
  struct Adjust {
    double weight = 1;               // the set's weight
    bool confidence = false;         // multiply by the stored per-example weight
    double label_low = 0, label_scale = 1;  // label -> (label - low) * scale
  };
  std::vector<std::unique_ptr<data::ExampleSource>> sources_;
  std::vector<Adjust> adjust_;
  std::unique_ptr<data::GlobalSampler> sampler_;
  loss::Format format_ = loss::Format::A;
  std::string format_name_;
  bool weighted_ = false;
  uint64_t dropout_seed_ = 0;
};

}  // namespace angle::train
