// The sharder's state seen whole (shard/fsdp.h): this rank's slices of the global flat space for
// checkpoints (ckpt/checkpoint.h), their restore, and the full fp32 parameters gathered into the
// model for evaluation and export.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <utility>

#include "shard/flat_layout.h"
#include "shard/fsdp.h"
#include "shard/gather_schedule.h"

namespace angle::shard {

namespace {
// Stages 1, 2 in fp32: the unit's gathered buffers are the model's own parameters already.
bool views_are_parameters(const UnitState& u, bool views) { return views && !u.rows_only; }
}  // namespace

void ShardedModel::gather_full(bool keep) {
  gathers_->wait_all();  // stages 1, 2: the re-gather after the last step (the views are the parameters)
  if (full_gathered_) return;
  c10::NoGradGuard no_grad;
  auto gather = [&](UnitState& u) {
    if (u.numel == 0) return;
    at::Tensor full = at::empty({u.padded}, u.master.options());
    comm_.all_gather_into(u.master, full);
    if (!keep) return;  // passed through: one unit at a time
    full = full.to(at::kFloat);  // a frozen shard is kept in param_dtype
    ledger_.add(MemoryLedger::kParams, bytes_of(full));
    for (size_t i = 0; i < u.module_params.size(); ++i)
      u.module_params[i].set_data(full.narrow(0, u.offsets[i], u.numels[i]).view(u.shapes[i]));
  };
  for (auto& u : units_) {
    if (views_are_parameters(*u, policy_.views_are_module_params)) continue;
    gather(*u);
    if (u->frozen) gather(*u->frozen);
  }
  full_gathered_ = true, full_kept_ = keep;
}

void ShardedModel::release_full() {
  if (!full_gathered_) return;
  full_gathered_ = false;
  if (!full_kept_) return;
  auto release = [&](UnitState& u) {
    for (at::Tensor& p : u.module_params) p.set_data(at::empty({0}, p.options()));
    if (u.numel > 0) ledger_.sub(MemoryLedger::kParams, u.padded * 4);
  };
  for (auto& u : units_) {
    if (views_are_parameters(*u, policy_.views_are_module_params)) continue;
    release(*u);
    if (u->frozen) release(*u->frozen);
  }
}

std::vector<ShardedModel::Range> ShardedModel::owned_ranges() const {
  std::vector<Range> out;
  if (groups_->replica && groups_->replica->rank() != 0) return out;  // a replica's copy: saved by the first
  for (const auto& u : units_)
    if (u->real() > 0) out.push_back({u->global_offset + u->begin, u->real()});
  return out;
}

at::Tensor ShardedModel::owned(const std::string& what) const {
  std::vector<at::Tensor> parts;
  if (groups_->replica && groups_->replica->rank() != 0) return at::empty({0}, f32_);  // as owned_ranges()
  for (const auto& u : units_) {
    if (what == "grads") {  // stage 1 holds the whole unit's local gradient until step()
      parts.push_back(u->grad.narrow(0, policy_.shards_grads ? 0 : u->begin, u->real()));
      continue;
    }
    const at::Tensor& t = what == "params" ? u->master : what == "exp_avg" ? u->exp_avg : u->exp_avg_sq;
    parts.push_back(t.narrow(0, 0, u->real()));
  }
  return at::cat(parts);
}

void ShardedModel::restore(const std::function<at::Tensor(const std::string&, int64_t, int64_t)>& read, int64_t steps) {
  c10::NoGradGuard no_grad;
  gathers_->wait_all();
  for (auto& u : units_) {
    const int64_t real = u->real(), begin = u->global_offset + u->begin;
    for (auto [name, t] : {std::pair{"params", &u->master}, {"exp_avg", &u->exp_avg}, {"exp_avg_sq", &u->exp_avg_sq}}) {
      t->zero_();  // the padding stays 0
      if (real > 0) t->narrow(0, 0, real).copy_(read(name, begin, begin + real));
    }
    u->grad.zero_();
  }
  step_ = steps;
  gathers_->after_update();
}

}  // namespace angle::shard
