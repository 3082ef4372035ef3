#include "data/sampler.h"

#include <numeric>

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

}  // namespace

std::vector<uint64_t> epoch_permutation(uint64_t size, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> order(size);
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng{seed * 0x2545f4914f6cdd1dULL + epoch + 1};
  for (uint64_t i = size; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);  // Fisher-Yates
  return order;
}

}  // namespace angle::data
