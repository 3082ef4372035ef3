// The dropout key of every training text (model/dropout.h): a function of the job's seed, the
// optimizer step, the example (its training set and row) and which text of the example it is, and
// of nothing a run's layout changes (rank, world size, micro-batch or chunk split, padding), so
// that the masks, and with them the run, are the same on any number of ranks and after a resume on
// any other number.
#pragma once
#include <cstdint>

namespace angle::train {

// SplitMix64's finaliser over (a, b): every input bit reaches every output bit.
uint64_t mix_key(uint64_t a, uint64_t b);

// The key of example `row` of training set `set` in optimizer step `step` (1-based).
inline uint64_t example_dropout_key(uint64_t seed, long step, uint64_t set, uint64_t row) {
  return mix_key(mix_key(mix_key(seed, static_cast<uint64_t>(step)), set), row);
}
// The key of text `text` (0-based column) of the example whose key is `example_key`.
inline uint64_t text_dropout_key(uint64_t example_key, int64_t text) {
  return mix_key(example_key, static_cast<uint64_t>(text));
}

}  // namespace angle::train
