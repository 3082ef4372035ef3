#include "shard/gather_schedule.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

namespace angle::shard {

// The rank's own slot of the full buffer takes its master slice (in param_dtype), then the
// all-gather fills the others in place: no send copy.
comm::WorkPtr GatherSchedule::gather_async(UnitState& u) {
  at::Tensor own = u.full.narrow(0, u.begin, u.shard);
  if (!policy_.views_are_module_params) own.copy_(u.master);
  return comm_.all_gather_into_async(own, u.full);
}

void GatherSchedule::start(UnitState& u) {
  if (u.frozen) start(*u.frozen);
  if (u.materialized || u.gathering) return;
  alloc_storage(u.full);
  ledger_.add(MemoryLedger::kParams, bytes_of(u.full));
  if (u.numel == 0) u.materialized = true;  // a unit that is all frozen
  else u.gathering = gather_async(u);
}

void GatherSchedule::wait(UnitState& u) {
  if (u.frozen) wait(*u.frozen);
  if (!u.gathering) return;
  u.gathering->wait();
  u.gathering.reset();
  u.materialized = true;
}

void GatherSchedule::free(UnitState& u) {
  if (u.frozen) free(*u.frozen);
  wait(u);
  if (!u.materialized) return;
  free_storage(u.full);
  ledger_.sub(MemoryLedger::kParams, bytes_of(u.full));
  u.materialized = false;
}

void GatherSchedule::free_all() {
  for (auto& u : units_) free(*u);
}

std::vector<at::Tensor> GatherSchedule::acquire(size_t unit) {
  UnitState& u = *units_[unit];
  start(u);
  wait(u);
  if (policy_.gathers_per_unit && unit + 1 < units_.size()) start(*units_[unit + 1]);  // prefetch
  return views(u);
}

bool GatherSchedule::after_forward(size_t unit, bool backward_follows) {
  if (!policy_.gathers_per_unit) return false;
  UnitState& u = *units_[unit];
  if (!backward_follows) {
    free(u);
    return false;
  }
  if (unit + 1 < units_.size()) free(u);  // the last unit's backward comes next: keep it
  return true;
}

// Gathers the unit again where its backward reads it, and prefetches the next one.
void GatherSchedule::before_backward(size_t unit) {
  // A unit with frozen parameters is freed once backward has moved below it: its last trainable
  // gradient may arrive before autograd is done with its frozen weights (the input gradient of
  // a projection whose adapter is finished), so that arrival cannot free it as it frees others.
  if (policy_.gathers_per_unit)
    for (size_t above = unit + 1; above < units_.size(); ++above)
      if (units_[above]->frozen) free(*units_[above]);
  UnitState& u = *units_[unit];
  if (u.backward_reads_params) {
    start(u);
    wait(u);
  }
  for (size_t previous = unit; previous-- > 0;)  // prefetch the next unit that backward will need
    if (units_[previous]->backward_reads_params) {
      start(*units_[previous]);
      break;
    }
}

// The unit's backward is complete: its gathered parameters can go (with frozen ones: later, see
// before_backward()).
void GatherSchedule::unit_backward_done(UnitState& u) {
  if (policy_.gathers_per_unit && !u.frozen) free(u);
}

void GatherSchedule::after_backward() {
  if (policy_.gathers_per_unit) free_all();
}

// Stages 1 and 2 gather every unit again, asynchronously: each gather is waited for where the
// unit is next needed (its forward, wait_all()), so they overlap the next step's data and forward.
// Stage 3 drops whatever is still materialised (it is gathered when next needed).
void GatherSchedule::after_update() {
  if (policy_.gathers_per_unit) {
    free_all();
    return;
  }
  for (auto& u : units_)  // frozen parameters never change: they stay as gathered
    if (u->numel > 0 && !u->rows_only) {
      wait(*u);
      u->gathering = gather_async(*u);
      u->materialized = false;
    }
}

void GatherSchedule::wait_all() {
  for (auto& u : units_) wait(*u);
}

void GatherSchedule::test() {
  for (auto& u : units_)
    if (u->gathering) u->gathering->test();
}

std::pair<at::Tensor, at::Tensor> GatherSchedule::lookup_rows(size_t unit, const at::Tensor& ids) {
  UnitState& u = *units_[unit];
  if (unit + 1 < units_.size()) start(*units_[unit + 1]);  // prefetch, as acquire() does
  c10::NoGradGuard no_grad;
  // The rows every rank needs, sorted and unique.
  at::Tensor mine = std::get<0>(at::_unique(ids.reshape({-1}), /*sorted=*/true));
  at::Tensor rows = std::get<0>(at::_unique(comm_.all_gather_rows(mine), /*sorted=*/true));
  // Each rank fills the elements of those rows that lie in its slice; the sum completes them.
  const UnitState& held = u.frozen ? *u.frozen : u;  // a frozen matrix (LoRA) gets no gradient
  const int64_t width = held.shapes[0][1], real = held.real();
  at::Tensor values = at::zeros({rows.size(0), width}, held.full.options());
  if (real > 0) {
    const auto [first_row, end_row] = held.owned_rows(width);
    at::Tensor part = at::zeros({(end_row - first_row) * width}, held.full.options());
    part.narrow(0, held.begin - first_row * width, real).copy_(held.master.narrow(0, 0, real));
    at::Tensor inside = (rows >= first_row).logical_and_(rows < end_row).nonzero().squeeze(1);
    values.index_copy_(0, inside, part.view({-1, width}).index_select(0, rows.index_select(0, inside) - first_row));
  }
  comm_.all_reduce_sum(values);
  return {rows, values};
}

}  // namespace angle::shard
