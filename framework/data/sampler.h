// Deterministic data order: one permutation of the training set per epoch, a pure function of
// (seed, epoch) computed with our own generator, so that it is identical on every platform,
// compiler and world size.
#pragma once
#include <cstdint>
#include <vector>

namespace angle::data {

std::vector<uint64_t> epoch_permutation(uint64_t size, uint64_t seed, uint64_t epoch);

}  // namespace angle::data
