// The optimizer step of the sharder (shard/fsdp.h): stage 1's reduce-scatter of the local
// gradients, clipping by the global gradient norm, AdamW on every shard, then the parameters
// gathered again (or, stage 3, dropped until next needed).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "shard/flat_layout.h"
#include "shard/fsdp.h"
#include "shard/gather_schedule.h"

namespace angle::shard {

namespace {

// The squared norm over the shard group of the shard gradients (double [1]; replicas hold the same).
at::Tensor global_norm_sq(const std::vector<at::Tensor>& shard_grads, comm::Comm& comm, const at::TensorOptions& f32) {
  at::Tensor norm_sq = at::zeros({1}, f32.dtype(at::kDouble));
  // In double, a slice at a time: a double copy of a whole shard gradient would be 94 MB of fresh
  // pages every step for MiniLM's word embeddings at one rank (beyond glibc's 32 MiB mmap ceiling,
  // so never reused), where an 8 MB slice is reused from the heap.
  constexpr int64_t kSlice = 1 << 20;
  for (const at::Tensor& g : shard_grads)
    for (int64_t begin = 0; begin < g.numel(); begin += kSlice)
      norm_sq += at::linalg_vector_norm(g.narrow(0, begin, std::min(kSlice, g.numel() - begin)), 2, c10::nullopt, false,
                                        at::kDouble).pow(2);
  comm.all_reduce_sum(norm_sq);
  return norm_sq;
}

}  // namespace

// Stage 1 (StagePolicy::reduce_scatters_at_step) reduce-scatters each unit's local gradient into
// a shard gradient that exists only during the step (with replicas, then sums it across them);
// its bytes are counted in `step_bytes`.
// Otherwise the shard gradients are the units' own.
std::vector<at::Tensor> ShardedModel::shard_gradients(int64_t& step_bytes) {
  std::vector<at::Tensor> shard_grads;
  if (!policy_.reduce_scatters_at_step) {
    for (auto& u : units_) shard_grads.push_back(u->grad);
    return shard_grads;
  }
  std::vector<comm::WorkPtr> works;
  std::vector<at::Tensor> sends;
  for (auto& u : units_) {
    sends.push_back(u->grad.to(options_.reduce_dtype));
    shard_grads.push_back(at::empty({u->shard}, sends.back().options()));
    step_bytes += bytes_of(shard_grads.back()) + (sends.back().is_same(u->grad) ? 0 : bytes_of(sends.back()));
    works.push_back(u->numel > 0 ? comm_.reduce_scatter_sum_async(sends.back(), shard_grads.back()) : nullptr);
  }
  ledger_.add(MemoryLedger::kGrads, step_bytes);
  for (size_t i = 0; i < units_.size(); ++i) {  // replicas: then summed across them
    if (!works[i]) continue;
    works[i]->wait();
    if (groups_->replica) works[i] = groups_->replica->all_reduce_sum_async(shard_grads[i]);
  }
  for (size_t i = 0; i < units_.size(); ++i) {
    if (works[i]) works[i]->wait();
    shard_grads[i] = shard_grads[i].to(at::kFloat);
  }
  return shard_grads;
}

double ShardedModel::step(double lr, double max_grad_norm) {
  finish_backward();
  gathers_->wait_all();  // a gather of the last step still reading a master it would update
  c10::NoGradGuard no_grad;
  int64_t step_bytes = 0;  // stage 1 on several ranks: the reduced shards exist only during the step
  std::vector<at::Tensor> shard_grads = shard_gradients(step_bytes);
  const at::Tensor norm_sq = global_norm_sq(shard_grads, comm_, f32_);
  comm_.synchronize();  // on a GPU the host catches up here, under the watchdog, before it reads the norm
  const double norm = std::sqrt(norm_sq.item<double>());
  const double coefficient = max_grad_norm > 0 ? max_grad_norm / (norm + 1e-6) : 1.0;  // as clip_grad_norm_
  ++step_;
  for (size_t i = 0; i < units_.size(); ++i) {
    UnitState& u = *units_[i];
    adamw_update(u.master, shard_grads[i], u.exp_avg, u.exp_avg_sq, u.decayed, step_, lr, options_.adam,
                 std::min(coefficient, 1.0));
    u.grad.zero_();
  }
  shard_grads.clear();
  ledger_.sub(MemoryLedger::kGrads, step_bytes);
  gathers_->after_update();
  return norm;
}

void ShardedModel::end_training() {
  for (auto& u : units_) {
    ledger_.sub(MemoryLedger::kGrads, bytes_of(u->grad));
    ledger_.sub(MemoryLedger::kOptim, bytes_of(u->exp_avg) + bytes_of(u->exp_avg_sq));
    u->grad = u->exp_avg = u->exp_avg_sq = at::Tensor();
  }
}

}  // namespace angle::shard
