// The batch phase of a step: this rank's examples of a micro-batch become token rows (2 per
// example for formats A/B, 3 for C, in the loss's interleaved order), after angle-emb's duplicate
// filter computed over the *global* micro-batch, so that the result does not depend on how the
// batch is split across ranks.
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "comm/comm.h"
#include "data/dataset_file.h"

namespace angle::train {

// 64-bit FNV-1a of a token-id sequence: what ranks exchange instead of the ids themselves.
uint64_t hash_ids(const std::vector<int64_t>& ids);

// angle-emb's AngleDataCollator filter over texts in global order (`texts_per_example` hashes
// per example): an example is dropped when any of its texts equals one seen earlier in the batch
// (text1 == text2 included); texts of a dropped example that came before the duplicate stay
// "seen", exactly as the reference does. An example that is not `active` (weight 0: it must have
// no effect at all) is kept, and its texts are not "seen". Returns one keep flag per example.
std::vector<bool> duplicate_filter(const std::vector<uint64_t>& text_hashes, size_t texts_per_example,
                                   const std::vector<bool>& active);

struct StepBatch {
  std::vector<const std::vector<int64_t>*> rows;  // this rank's token rows, example by example
  std::vector<int64_t> row_keys;                  // each row's dropout key (train/dropout_keys.h)
  at::Tensor labels, weights;                     // [kept examples] float32 (labels 0 outside format A)
  std::vector<int64_t> kept_per_rank;             // kept examples of every rank (known to all)
  at::Tensor text_hashes;                         // [global kept rows] int64: hash_ids of every kept row, in
                                                  // the gathered order (rank by rank; false-negative masking)
  int64_t dropped = 0;                            // duplicates dropped from the global micro-batch
  int64_t rows_per_example = 2;
  int64_t kept() const { return labels.size(0); }
  int64_t global_kept() const;
  std::vector<int64_t> rows_per_rank() const;     // kept_per_rank x rows_per_example
  at::Tensor local_text_hashes(int rank) const;   // this rank's slice of text_hashes
};

// Gradient caching (train.chunk): every rank runs as many chunk passes as the rank with the most
// kept examples needs (at least one), so that the sharder's collectives match across ranks.
int64_t chunk_passes(const std::vector<int64_t>& kept_per_rank, int64_t chunk);
// Pass `c`'s rows out of `rows`: rows [c x per_chunk, (c + 1) x per_chunk), clipped (empty past the end).
template <typename Row>
std::vector<Row> chunk_of(const std::vector<Row>& rows, int64_t per_chunk, int64_t c) {
  const auto size = static_cast<int64_t>(rows.size());
  const int64_t begin = std::min(size, c * per_chunk), end = std::min(size, begin + per_chunk);
  return std::vector<Row>(rows.begin() + begin, rows.begin() + end);
}

// Collective: every rank passes its slice of the same micro-batch. `examples` must outlive the
// result (rows point into it).
StepBatch assemble_batch(const std::vector<data::Example>& examples, int64_t rows_per_example, bool filter_duplicate,
                         comm::Comm& comm);

}  // namespace angle::train
