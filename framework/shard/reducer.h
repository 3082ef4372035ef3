// Gradients as autograd delivers them (shard/fsdp.h). Hooks on the trainable parameters handed to
// a forward take each gradient over as soon as it is accumulated.
//   - Stage 1 (and one rank, fp32: StagePolicy::adds_grads_locally) adds it to the unit's
//     gradient at once.
//   - Stages 2, 3 copy it into its bucket, laid out by the ranks that own its pieces; a complete
//     bucket is reduce-scattered in one collective (pieces of different sizes:
//     Comm::reduce_scatter_counts_async), asynchronously, its summed piece added to this rank's
//     shard gradient when done and the bucket freed. With replicas (shard/shard_groups.h) the
//     piece is first summed across them (one all-reduce). A bucket starts filling only once the
//     reductions in flight leave it room within `inflight_bytes` (else backward waits for the
//     oldest), so the transient gradients stay near max(inflight_bytes, the largest bucket).
//   - Buckets: each unit's trainable parameters in the order autograd delivers them, cut where a
//     bucket would pass shard.bucket_mb (0: one bucket per unit; a parameter above it is an
//     error). Issued in one fixed order on every rank: units last to first, a unit's buckets in
//     that order; a bucket complete before its turn waits. The delivery order is what rank 0
//     saw in the first backward (until then: parameters last to first), shared with every rank
//     once and the buckets rebuilt (as DDP rebuilds its buckets after the first iteration); with
//     one bucket per unit there is nothing to learn.
//   - The word-embedding gradient comes as rows: stages 2, 3 all-gather them over every rank and
//     each rank sums those in its own slice; where the ranks' rows together outnumber the matrix's
//     (many ranks), they are summed into a dense matrix and reduce-scattered instead.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "comm/comm.h"
#include "shard/flat_layout.h"
#include "shard/fsdp.h"
#include "shard/gather_schedule.h"
#include "shard/memory_ledger.h"
#include "shard/shard_groups.h"
#include "shard/stage_policy.h"

namespace angle::shard {

class Reducer {
 public:
  Reducer(const ShardGroups& groups, const ShardOptions& options, const StagePolicy& policy, MemoryLedger& ledger,
          Units& units, GatherSchedule& gathers, const at::TensorOptions& f32);

  // A forward with gradients: `params` (the unit's, fresh from GatherSchedule::acquire) are made
  // leaves whose gradients come here; the first unit's opens the backward (begin_forward()).
  void watch(size_t unit, std::vector<at::Tensor>& params);
  // `leaf` holds the rows `rows` of the unit's embedding matrix (stage 3's lookup): its gradient
  // comes here as the sparse gradient of the matrix.
  void watch_rows(size_t unit, const at::Tensor& leaf, const at::Tensor& rows);
  // A forward with gradients begins: its buckets will be issued from the first in the order.
  void begin_forward();
  // A parameter's gradient (`param`: its index among the unit's trainable parameters).
  void gradient_ready(size_t unit, size_t param, at::Tensor grad);
  // Lets the collectives in flight progress and collects finished ones.
  void progress();
  // After a backward: issues what is left (a parameter that got no gradient contributes zeros)
  // and waits for every reduction; after the first, shares rank 0's delivery order.
  void finish();

 private:
  // Where a parameter's elements [from, from + size) go: send[at, at + size).
  struct Piece {
    int64_t from, size, at;
  };
  struct Bucket {
    size_t unit = 0;
    bool sparse = false;                   // the word embeddings' rows
    bool last_of_unit = false;             // issuing it completes the unit's backward
    std::vector<size_t> params;            // the unit's trainable parameters it holds
    std::vector<std::vector<Piece>> pieces;  // per held parameter
    std::vector<int64_t> counts;           // elements per rank (the reduce-scatter's pieces)
    std::vector<std::pair<int64_t, int64_t>> mine;  // this rank's pieces: (offset in its shard, size), in order
    int64_t numel = 0;
    // Filled during a backward:
    at::Tensor send, rows;                 // rows: the sparse gradient
    std::vector<bool> arrived;
    size_t count = 0;
    bool complete() const { return count == params.size(); }
  };
  // A bucket's reduction in flight.
  struct InFlight {
    size_t bucket;
    at::Tensor send, received;
    comm::WorkPtr work;
    bool across = false;  // the reduce-scatter is done; the all-reduce across replicas runs
    bool direct = false;  // `received` is this rank's slice of the shard gradient itself
    int64_t bytes = 0;
  };

  void build_buckets(const std::vector<std::vector<size_t>>& order);
  void add_bucket(size_t unit, const std::vector<size_t>& params);
  void issue_ready();
  void issue(size_t index);
  void reduce_rows(UnitState& u, const at::Tensor& grad);
  void reduce_dense(UnitState& u, const at::Tensor& indices, const at::Tensor& values);
  bool advance_oldest(bool block);
  void land(const InFlight& f);
  void complete_oldest() { advance_oldest(true); }
  void share_order();

  const ShardGroups& groups_;
  comm::Comm& comm_;  // the shard group
  const ShardOptions& options_;
  const StagePolicy& policy_;
  MemoryLedger& ledger_;
  Units& units_;
  GatherSchedule& gathers_;
  const at::TensorOptions f32_;
  std::vector<Bucket> buckets_;                              // in issue order
  std::vector<std::vector<std::pair<size_t, size_t>>> where_;  // [unit][param]: (bucket, index in it)
  size_t cursor_ = 0;                                         // the next bucket to issue
  bool backward_open_ = false;                                // a forward with gradients ran; its reductions are due
  bool learn_order_ = false;                                  // some unit has several buckets: learn the order
  bool recording_ = false, learned_ = false;                  // the first backward's delivery order
  std::vector<std::vector<size_t>> delivered_;                // [unit]: parameters in delivery order (first backward)
  std::deque<std::unique_ptr<InFlight>> in_flight_;
  int64_t in_flight_bytes_ = 0;
};

}  // namespace angle::shard
