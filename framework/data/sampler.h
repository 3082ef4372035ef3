// Deterministic, world-size-invariant data order. Every epoch is a fixed sequence of examples, a
// pure function of (seed, epoch) computed with our own generator (identical on every platform);
// the global batch of step s is positions [s*G, (s+1)*G) of that sequence, and rank r of N reads a
// contiguous slice of it. The cursor (examples consumed) therefore determines everything left,
// which is what makes resuming exact and independent of the number of ranks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace angle::data {

std::vector<uint64_t> epoch_permutation(uint64_t size, uint64_t seed, uint64_t epoch);

struct ExampleRef {
  uint32_t dataset = 0;
  uint64_t index = 0;
  bool operator==(const ExampleRef&) const = default;
};

class GlobalSampler {
 public:
  // Several datasets are mixed with `weights` (empty: proportional to their sizes, i.e. plain
  // concatenation); an epoch has as many examples as all datasets together.
  GlobalSampler(std::vector<uint64_t> sizes, std::vector<double> weights, uint64_t seed, uint64_t global_batch);

  uint64_t epoch_length() const { return epoch_length_; }
  uint64_t steps_per_epoch() const { return (epoch_length_ + global_batch_ - 1) / global_batch_; }
  // The global batch of optimizer step `step` (0-based, counted across epochs); the last batch
  // of an epoch may be shorter.
  std::vector<ExampleRef> global_batch(uint64_t step) const;
  // Examples consumed by the end of step `step` (the resume cursor).
  uint64_t cursor_after(uint64_t step) const;
  // Rank r of `world`: the half-open range of a batch of `size` that it reads.
  static std::pair<size_t, size_t> rank_slice(size_t size, int rank, int world);
  // The whole sequence of one epoch (mostly for tests).
  const std::vector<ExampleRef>& epoch(uint64_t epoch) const;

 private:
  std::vector<uint64_t> sizes_;
  std::vector<uint64_t> quota_;  // examples of each dataset per epoch
  uint64_t seed_, global_batch_, epoch_length_ = 0;
  mutable uint64_t cached_epoch_ = UINT64_MAX;
  mutable std::vector<ExampleRef> cached_;
};

}  // namespace angle::data
