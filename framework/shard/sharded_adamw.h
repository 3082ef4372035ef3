// ZeRO-2 style data parallelism: all parameters live in one flat fp32 buffer (parameters are
// views into it); after backward the gradients are copied into a flat buffer, reduce-scattered
// with SUM so that each rank holds the summed gradient of its shard only; the global gradient
// norm is all-reduced from the shards for clipping; each rank keeps AdamW moments for its shard
// only and updates it; the updated shards are all-gathered back into every rank's parameters.
// With one rank this is plain AdamW (checked against torch::optim::AdamW in the unit tests).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm.h"

namespace angle::shard {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class ShardedAdamW {
 public:
  // `decays(name)`: whether weight decay applies to that parameter (HF: not biases/LayerNorm).
  ShardedAdamW(const std::vector<std::pair<std::string, at::Tensor>>& params, comm::Comm& comm,
               AdamWOptions options, const std::function<bool(const std::string&)>& decays);

  void zero_grad();
  // Reduces gradients, clips by global norm (0 = no clipping), updates, re-gathers the
  // parameters. Returns the global gradient norm before clipping.
  double step(double lr, double max_grad_norm);

  uint64_t state_bytes() const;  // AdamW moments held by this rank
  int64_t shard_size() const { return shard_size_; }
  int64_t numel() const { return numel_; }

  // Checkpointing: this rank's slice [shard_begin, shard_begin + shard_size) of the padded flat
  // space of parameters and moments, and the layout needed to read it back on any world size.
  at::Tensor param_shard() const { return flat_params_.narrow(0, shard_begin_, shard_size_); }
  at::Tensor exp_avg() const { return exp_avg_; }
  at::Tensor exp_avg_sq() const { return exp_avg_sq_; }
  int64_t steps_taken() const { return step_; }
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset;
  };
  const std::vector<Entry>& layout() const { return layout_; }  // each parameter's place in the flat buffers
  // `read(name, begin, end)` returns elements [begin, end) of the saved flat tensor `name`
  // ("params", "exp_avg", "exp_avg_sq"), end <= numel(). Fills this rank's slices and gathers
  // the full parameters.
  void restore(const std::function<at::Tensor(const std::string&, int64_t, int64_t)>& read, int64_t steps);

 private:
  comm::Comm& comm_;
  AdamWOptions options_;
  std::vector<at::Tensor> params_;
  std::vector<int64_t> offsets_;
  std::vector<Entry> layout_;
  at::Tensor flat_params_, flat_grads_, decay_mask_;  // decay mask: this shard only
  at::Tensor exp_avg_, exp_avg_sq_;
  int64_t numel_ = 0, padded_ = 0, shard_begin_ = 0, shard_size_ = 0, step_ = 0;
};

}  // namespace angle::shard
