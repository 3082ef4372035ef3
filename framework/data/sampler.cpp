#include "data/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace angle::data {
namespace {

// SplitMix64: tiny, well-distributed, and fully specified (unlike std::shuffle's use of a URBG).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t bound) {  // unbiased, by rejection
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % bound;
  }
};

template <typename T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (uint64_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);  // Fisher-Yates
}

}  // namespace

std::vector<uint64_t> epoch_permutation(uint64_t size, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> order(size);
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng{seed * 0x2545f4914f6cdd1dULL + epoch + 1};
  shuffle(order, rng);
  return order;
}

GlobalSampler::GlobalSampler(std::vector<uint64_t> sizes, std::vector<double> weights, uint64_t seed,
                             uint64_t global_batch)
    : sizes_(std::move(sizes)), seed_(seed), global_batch_(global_batch) {
  ANGLE_CHECK(!sizes_.empty() && global_batch_ > 0, "sampler needs at least one dataset and a positive batch");
  for (uint64_t s : sizes_) ANGLE_CHECK(s > 0, "empty training set");
  epoch_length_ = std::accumulate(sizes_.begin(), sizes_.end(), uint64_t{0});
  if (weights.empty()) {
    quota_ = sizes_;
    return;
  }
  ANGLE_CHECK(weights.size() == sizes_.size(), "data.mix_weights has ", weights.size(), " weights for ",
              sizes_.size(), " training sets");
  double total = 0;
  for (double w : weights) {
    ANGLE_CHECK(w > 0 && std::isfinite(w), "data.mix_weights must be positive (got ", w, ")");
    total += w;
  }
  // Largest-remainder apportionment of the epoch to the datasets.
  std::vector<std::pair<double, size_t>> remainders;
  uint64_t assigned = 0;
  for (size_t d = 0; d < sizes_.size(); ++d) {
    double exact = weights[d] / total * static_cast<double>(epoch_length_);
    quota_.push_back(static_cast<uint64_t>(std::floor(exact)));
    assigned += quota_.back();
    remainders.emplace_back(exact - std::floor(exact), d);
  }
  std::sort(remainders.begin(), remainders.end(), [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (size_t k = 0; assigned < epoch_length_; ++k, ++assigned) ++quota_[remainders[k % remainders.size()].second];
}

const std::vector<ExampleRef>& GlobalSampler::epoch(uint64_t epoch) const {
  if (epoch == cached_epoch_) return cached_;
  cached_.clear();
  if (sizes_.size() == 1) {
    for (uint64_t i : epoch_permutation(sizes_[0], seed_, epoch)) cached_.push_back({0, i});
  } else {
    // Which dataset each position draws from, shuffled; then each dataset's own permutation(s).
    std::vector<uint32_t> slots;
    for (size_t d = 0; d < sizes_.size(); ++d) slots.insert(slots.end(), quota_[d], static_cast<uint32_t>(d));
    SplitMix64 rng{(seed_ + 0x51ed27ULL) * 0x2545f4914f6cdd1dULL + epoch};
    shuffle(slots, rng);
    std::vector<std::vector<uint64_t>> orders(sizes_.size());
    std::vector<uint64_t> used(sizes_.size(), 0), cycle(sizes_.size(), 0);
    for (uint32_t d : slots) {
      if (used[d] % sizes_[d] == 0)  // a dataset smaller than its quota is cycled through again
        orders[d] = epoch_permutation(sizes_[d], seed_ ^ ((d + 1) * 0x9e3779b97f4a7c15ULL), epoch * 1024 + cycle[d]++);
      cached_.push_back({d, orders[d][used[d]++ % sizes_[d]]});
    }
  }
  cached_epoch_ = epoch;
  return cached_;
}

std::vector<ExampleRef> GlobalSampler::global_batch(uint64_t step) const {
  const uint64_t e = step / steps_per_epoch(), b = step % steps_per_epoch();
  const auto& sequence = epoch(e);
  const uint64_t begin = b * global_batch_, end = std::min(epoch_length_, begin + global_batch_);
  return std::vector<ExampleRef>(sequence.begin() + static_cast<std::ptrdiff_t>(begin),
                                 sequence.begin() + static_cast<std::ptrdiff_t>(end));
}

uint64_t GlobalSampler::cursor_after(uint64_t step) const {
  const uint64_t e = (step + 1) / steps_per_epoch(), b = (step + 1) % steps_per_epoch();
  return e * epoch_length_ + std::min(epoch_length_, b * global_batch_);
}

std::pair<size_t, size_t> GlobalSampler::rank_slice(size_t size, int rank, int world) {
  ANGLE_CHECK(world > 0 && rank >= 0 && rank < world, "rank ", rank, " outside world size ", world);
  return {size * static_cast<size_t>(rank) / static_cast<size_t>(world),
          size * static_cast<size_t>(rank + 1) / static_cast<size_t>(world)};
}

}  // namespace angle::data
