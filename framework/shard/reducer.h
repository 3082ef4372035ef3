// Gradients as autograd delivers them (shard/fsdp.h). Hooks on the trainable parameters handed to
// a forward take each gradient over as soon as it is accumulated; it is then reduced in one fixed
// order on every rank (units last to first, parameters last to first: a gradient that arrives
// early waits for its turn). Stage 1 adds it to the rank's local [padded] gradient; stages 2, 3
// send each piece to the rank that owns it (an asynchronous reduce to that root), up to
// `inflight_bytes` in flight before backward waits for the oldest. The word-embedding gradient
// comes as rows: stages 2, 3 all-gather them and each rank sums those in its own slice.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "comm/comm.h"
#include "shard/flat_layout.h"
#include "shard/fsdp.h"
#include "shard/gather_schedule.h"
#include "shard/memory_ledger.h"
#include "shard/stage_policy.h"

namespace angle::shard {

class Reducer {
 public:
  Reducer(comm::Comm& comm, const ShardOptions& options, const StagePolicy& policy, MemoryLedger& ledger,
          Units& units, GatherSchedule& gathers, const at::TensorOptions& f32)
      : comm_(comm), options_(options), policy_(policy), ledger_(ledger), units_(units), gathers_(gathers),
        f32_(f32) {}

  // A forward with gradients: `params` (the unit's, fresh from GatherSchedule::acquire) are made
  // leaves whose gradients come here; the first unit's opens the backward (begin_forward()).
  void watch(size_t unit, std::vector<at::Tensor>& params);
  // `leaf` holds the rows `rows` of the unit's embedding matrix (stage 3's lookup): its gradient
  // comes here as the sparse gradient of the matrix.
  void watch_rows(size_t unit, const at::Tensor& leaf, const at::Tensor& rows);
  // A forward with gradients begins: its reductions will start from the last trainable parameter.
  void begin_forward();
  // Gradients, in the fixed order of the cursor (unit, parameter), from the last to the first.
  void gradient_ready(size_t unit, size_t param, at::Tensor grad);
  // Lets the collectives in flight progress and collects finished ones.
  void progress();
  // After a backward: issues what is left (a parameter that got no gradient contributes zeros)
  // and waits for every reduction.
  void finish();

 private:
  // A reduction in flight: the piece of a gradient sent, and on the owner where its sum lands.
  struct InFlight {
    size_t unit;
    int64_t shard_offset = 0;  // where the sum lands in the owner's shard gradient
    at::Tensor send, out;      // out: the owner's receive buffer (the shard gradient itself in fp32)
    bool accumulate = false;   // out is a separate buffer to add into the shard gradient
    comm::WorkPtr work;
    int64_t bytes = 0;         // counted as gradient bytes until completed
  };

  bool seek_cursor(size_t unit);
  void reduce(size_t unit, size_t param, at::Tensor grad);
  void reduce_rows(UnitState& u, const at::Tensor& grad);
  void complete_oldest();

  comm::Comm& comm_;
  const ShardOptions& options_;
  const StagePolicy& policy_;
  MemoryLedger& ledger_;
  Units& units_;
  GatherSchedule& gathers_;
  const at::TensorOptions f32_;
  std::map<std::pair<size_t, size_t>, at::Tensor> arrived_;  // gradients waiting for their turn
  std::pair<size_t, size_t> cursor_{0, 0};                   // the next (unit, parameter) to reduce
  bool backward_open_ = false;                                // a forward with gradients ran; its reductions are due
  std::deque<std::unique_ptr<InFlight>> in_flight_;
  int64_t in_flight_bytes_ = 0;
};

}  // namespace angle::shard
