// FSDP-style sharded data parallelism over the units of a model (model/backbone.h: a BERT encoder
// or a LLaMA-family decoder; the units are the word embeddings, each layer, and the rest: BERT's
// other embeddings, a decoder's final norm). Each unit's parameters form one flat buffer, padded
// to a multiple of the world size N; rank r owns the r-th 1/N slice of it: the fp32 master copy,
// its gradient and the AdamW moments of that slice.
//   stage 1  full parameters and full gradients on every rank; gradients reduce-scattered at the
//            optimizer step; only the optimizer state is sharded (ZeRO-1).
//   stage 2  + gradients are reduce-scattered as autograd delivers them: each is copied into its
//            bucket (a unit's gradients, or a part of them of at most `bucket_mb`), laid out by
//            the rank that owns each piece; a complete bucket is reduced in one asynchronous
//            collective and freed (backward goes on until the buckets in flight pass
//            `inflight_bytes`, then waits for the oldest). No full gradient of the model ever
//            exists: the peak is the buckets being filled and in flight. Gradients are reduced
//            every micro-batch and summed into the shard, so accumulation costs no extra memory
//            (ZeRO-2). Buckets are issued in one fixed order on every rank: units last to first
//            and, inside a unit, the order in which autograd delivered the gradients in the first
//            backward (shard/reducer.h).
//   stage 3  + parameters: a unit's full buffer is all-gathered just before its forward (the next
//            unit's gather is issued while it computes) and freed after it; gathered again before
//            its backward (again prefetching the next one) and freed after. At most two units
//            are materialised at once (PyTorch FSDP FULL_SHARD, reshard_after_forward). A unit
//            whose backward does not read its parameters (the word embeddings) is not gathered
//            again (model::Unit::backward_reads_params).
// The word-embedding gradient is sparse (the rows of the batch's tokens): ranks all-gather those
// rows and each keeps the sum over its own slice, instead of reducing a dense vocab x hidden
// matrix (a dense reduce-scatter once all ranks' rows outnumber the matrix's). Stages 2 and 3
// never gather the word-embedding matrix (UnitState::rows_only): ranks exchange the ids of their
// tokens and sum the parts of those rows that each owns (one all-reduce of rows x hidden).
// Hybrid sharding (shard.replicate, shard/shard_groups.h): all of the above happens inside a group
// of ranks; the groups hold the same shards, and each reduced piece of a gradient is then summed
// across the groups. Checkpoints hold one copy (the first group's) and stay world-size independent.
// Mixed precision: parameters are gathered and used in `param_dtype`, gradients reduced in
// `reduce_dtype`; the master copy and the moments stay fp32.
// Frozen parameters (requires_grad false: LoRA's base weights) are sharded and gathered with
// their unit, in param_dtype, but get no gradient, no master copy in fp32, no optimizer state and
// no place in checkpoints: the layout and the optimizer cover the trainable parameters only.
// The parts, one concern each; what the stage changes is decided once, in shard/stage_policy.h:
//   shard/flat_layout      a unit's flat buffers and shard state (built by the constructor), and
//                          the storage that is freed and re-allocated in place
//   shard/gather_schedule  when each unit's full parameters exist; stage 3's lookup of rows
//   shard/shard_groups     the ranks that shard one replica, and the replicas
//   shard/reducer          gradients as autograd delivers them: the buckets, their fixed order,
//                          the reductions in flight, the word-embedding rows
//   shard/fsdp_step.cpp    the optimizer step: stage 1's reduce-scatter, clipping, AdamW
//   shard/fsdp_checkpoint.cpp  the owned slices for checkpoints; the full gather for evaluation
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm.h"
#include "model/backbone.h"
#include "shard/adamw.h"
#include "shard/memory_ledger.h"
#include "shard/shard_groups.h"
#include "shard/stage_policy.h"

namespace angle::shard {

struct UnitState;
class GatherSchedule;
class Reducer;

struct ShardOptions {
  int stage = 2;
  at::ScalarType param_dtype = at::kFloat, reduce_dtype = at::kFloat;
  double bucket_mb = 0;  // a unit's gradients are reduced in buckets of at most this (MiB in reduce_dtype); 0: one per unit
  int64_t inflight_bytes = 12 << 20;  // gradient bytes being reduced at once before backward waits
  std::string replicate = "1";        // 1, node, or K replicas (shard/shard_groups.h)
  at::Device device = at::kCPU;       // where the shards and gathered buffers live (the model's device)
  AdamWOptions adam;
};

class ShardedModel : public model::UnitSource {
 public:
  // Collective over `comm` (the job's ranks). Takes over `model`'s parameters: afterwards they hold the full values only where stage < 3
  // and param_dtype is fp32 (they are then views into the gathered buffers), else only between
  // gather_full() and release_full(). `decays(name)`: whether weight decay applies. The parameters
  // that `files` holds are read from them, each rank its own slices only (the model's tensors may
  // be released: model/encoder.h); the others are taken from the model.
  ShardedModel(model::Backbone& model, comm::Comm& comm, const ShardOptions& options,
               const std::function<bool(const std::string&)>& decays, const model::ParameterFiles* files = nullptr);
  ~ShardedModel() override;
  ShardedModel(const ShardedModel&) = delete;
  ShardedModel& operator=(const ShardedModel&) = delete;

  // model::UnitSource: called by Backbone::forward(ids, mask, this) on every rank alike.
  std::vector<at::Tensor> acquire(size_t unit) override;
  at::Tensor release(size_t unit, const at::Tensor& output) override;
  // Stage 3 gathers only the rows of the batch's tokens (over all ranks) instead of the matrix.
  at::Tensor lookup(size_t unit, const at::Tensor& ids) override;

  // After each micro-batch's backward: issues what is left (a parameter that got no gradient
  // contributes zeros) and waits for every gradient reduction.
  void finish_backward();
  // Clips by the global gradient norm (0: off), updates every shard, zeroes the gradients and
  // (stages 1, 2) re-gathers the parameters. Returns the norm before clipping.
  double step(double lr, double max_grad_norm);

  // After the last step: frees the gradients and the optimizer moments, which the export and the
  // test evaluation do not need (rank 0 gathers the whole model for them).
  void end_training();

  // Collective: the model's own parameters hold the full fp32 values (for evaluation and export)
  // until release_full(). A rank that does not `keep` them lets each unit pass through and drops
  // it: only the rank that evaluates and exports ever holds the whole model.
  void gather_full(bool keep = true);
  void release_full();

  // Checkpoints. The global flat space is every trainable parameter in named_parameters() order,
  // unpadded.
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset;
  };
  struct Range {
    int64_t begin, size;
  };
  const std::vector<Entry>& layout() const { return layout_; }
  int64_t numel() const { return numel_; }
  // This rank's slices of the global space (none on the ranks of replicas other than the first:
  // a checkpoint holds one copy).
  std::vector<Range> owned_ranges() const;
  // "params", "exp_avg", "exp_avg_sq": those slices, concatenated; "grads": the gradient accumulated
  // since the last step() in those slices (stage 1: this rank's own, not yet reduced).
  at::Tensor owned(const std::string& what) const;
  // `read(name, begin, end)`: elements [begin, end) of the saved global tensor `name`.
  void restore(const std::function<at::Tensor(const std::string&, int64_t, int64_t)>& read, int64_t steps);
  int64_t steps_taken() const { return step_; }

  int stage() const { return options_.stage; }
  int replicas() const { return groups_->replicas; }
  at::Device device() const { return f32_.device(); }
  const MemoryLedger& memory() const { return ledger_; }
  void reset_memory_peak() { ledger_.reset_peak(); }

 private:
  // Layout (flat_layout.cpp).
  void lay_out(UnitState& u, const std::vector<size_t>& params,
               const std::vector<std::pair<std::string, at::Tensor>>& named, bool frozen,
               const model::ParameterFiles* files);
  std::unique_ptr<UnitState> make_unit(const model::Unit& unit,
                                       const std::vector<std::pair<std::string, at::Tensor>>& named,
                                       const std::function<bool(const std::string&)>& decays,
                                       const model::ParameterFiles* files);
  // The optimizer step (fsdp_step.cpp): every unit's shard gradient in fp32.
  std::vector<at::Tensor> shard_gradients(int64_t& step_bytes);

  std::unique_ptr<ShardGroups> groups_;  // destroyed last: the work in flight uses its communicators
  comm::Comm& comm_;                      // the ranks this rank shards with (groups_->shard)
  ShardOptions options_;
  StagePolicy policy_;
  std::vector<Entry> layout_;
  at::TensorOptions f32_;
  MemoryLedger ledger_;
  int64_t numel_ = 0, step_ = 0;
  bool full_gathered_ = false, full_kept_ = false;
  // Destroyed in reverse: the reductions in flight are waited for before the units go.
  std::vector<std::unique_ptr<UnitState>> units_;
  std::unique_ptr<GatherSchedule> gathers_;
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace angle::shard
