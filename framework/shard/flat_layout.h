// The sharder's view of one unit (shard/fsdp.h): its parameters laid out as one flat buffer padded
// to the world size, this rank's slice of it with the gradient and the optimizer state, and the
// storage tricks that let the full buffer come and go.
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm.h"
#include "shard/adamw.h"
#include "model/storage.h"

namespace angle::shard {

// A unit's trainable parameters, sharded with their gradient and optimizer state; its frozen
// ones (LoRA's base weights: requires_grad false) form a second, nested state of the same layout
// that is only sharded, gathered and freed: no gradient, no moments, no checkpoint.
struct UnitState {
  std::string name;
  std::vector<at::Tensor> module_params;  // the model's own tensors
  std::vector<std::vector<int64_t>> shapes;
  std::vector<int64_t> offsets, numels;   // within the unit's flat buffer
  int64_t global_offset = 0, numel = 0, padded = 0, shard = 0, begin = 0;
  bool sparse = false;                    // the gradient arrives as rows (word embeddings)
  bool rows_only = false;                 // sparse at stages 2, 3: looked up by rows, never gathered whole
  bool backward_reads_params = true;
  at::Tensor master;                      // fp32 [shard] (frozen: param_dtype)
  at::Tensor full;                        // param_dtype [padded]; storage freed when not materialised
  at::Tensor grad;                        // fp32: [padded] in stage 1, else [shard] (StagePolicy::shards_grads)
  at::Tensor exp_avg, exp_avg_sq;         // fp32 [shard]
  DecayRanges decayed;                    // the parts of the shard that weight decay applies to
  bool materialized = false;
  comm::WorkPtr gathering;
  std::unique_ptr<UnitState> frozen;               // the unit's frozen parameters, if any
  std::vector<std::pair<bool, size_t>> order;      // each model parameter of the unit: (frozen, index in its part)
  int64_t real() const { return std::max<int64_t>(0, std::min(shard, numel - begin)); }  // owned elements before the padding
  // The part [first, end) of parameter i (flat-buffer positions) inside this rank's slice; empty
  // (first >= end) when the slice holds none of it.
  std::pair<int64_t, int64_t> owned_part(size_t i) const {
    return {std::max(begin, offsets[i]), std::min(begin + shard, offsets[i] + numels[i])};
  }
  // For a matrix unit of rows of `width`: the rows [first, end) that this rank's slice touches.
  std::pair<int64_t, int64_t> owned_rows(int64_t width) const { return {begin / width, (begin + real() + width - 1) / width}; }
};

using Units = std::vector<std::unique_ptr<UnitState>>;

using model::alloc_storage;  // the full buffer comes and goes (model/storage.h)
using model::free_storage;

inline int64_t bytes_of(const at::Tensor& t) {
  return t.defined() ? static_cast<int64_t>(t.numel() * t.element_size()) : 0;
}

// Fresh tensors on the gathered buffers, in the unit's parameter order (trainable and frozen).
std::vector<at::Tensor> views(UnitState& u);

}  // namespace angle::shard
