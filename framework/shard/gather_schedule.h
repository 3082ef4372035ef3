// When each unit's full parameters exist (shard/fsdp.h). Stages 1, 2 keep every unit gathered and
// gather them all again after each step (asynchronously: a unit's gather is waited for at its
// next forward, or by wait_all()). Stage 3 gathers a unit just before its forward (issuing
// the next unit's gather while it computes) and frees it after; gathers it again before its
// backward (prefetching the next one backward needs) and frees it once its gradients are all
// handed over (a unit with frozen parameters: once backward has moved below it): at most two
// units are materialised at once. Stage 3 also looks the word embeddings up by rows, never
// gathering the matrix. Every call comes on every rank alike, in the same order.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

#include "comm/comm.h"
#include "shard/flat_layout.h"
#include "shard/memory_ledger.h"
#include "shard/stage_policy.h"

namespace angle::shard {

class GatherSchedule {
 public:
  GatherSchedule(comm::Comm& comm, const StagePolicy& policy, MemoryLedger& ledger, Units& units)
      : comm_(comm), policy_(policy), ledger_(ledger), units_(units) {}

  // Before a unit's forward: its parameters, gathered, as fresh tensors (flat_layout.h: views).
  std::vector<at::Tensor> acquire(size_t unit);
  // After a unit's forward, `backward_follows` when its output takes part in a backward. True
  // when the unit must be gathered again before its backward (before_backward()).
  bool after_forward(size_t unit, bool backward_follows);
  void before_backward(size_t unit);
  // Autograd handed over every gradient of the unit.
  void unit_backward_done(UnitState& u);
  // Every reduction of a backward is done.
  void after_backward();
  // After the master shards changed (a step, a restore).
  void after_update();
  // Every gather in flight is done (before the parameters are read or the masters written).
  void wait_all();

  // Stage 3's lookup of the rows `ids` of a unit that is one embedding matrix (after prefetching
  // the next unit, as acquire() does): the sorted unique rows of every rank's ids, and their
  // values (param_dtype), summed from the slices that own them.
  std::pair<at::Tensor, at::Tensor> lookup_rows(size_t unit, const at::Tensor& ids);

  // Lets the gathers in flight progress (see Reducer::progress).
  void test();

 private:
  comm::WorkPtr gather_async(UnitState& u);
  void start(UnitState& u);
  void wait(UnitState& u);
  void free(UnitState& u);
  void free_all();

  comm::Comm& comm_;
  const StagePolicy& policy_;
  MemoryLedger& ledger_;
  Units& units_;
};

}  // namespace angle::shard
