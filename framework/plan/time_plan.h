// The time half of `angle plan` (formulas in README "Planning"): compute from the model FLOPs of
// the rank's rows and a FLOP/s figure, communication from an alpha-beta model per collective call
// (ring all-gather / reduce-scatter / all-reduce; with NCCL the all-reduce's double binary tree
// where that is faster, as NCCL's tuner picks), each over the link its ranks span (within a node,
// or across nodes: the ring's slowest link), overlapped with compute where the sharding stage
// allows (stage 3's prefetched gathers with forward and backward, stage 2/3's gradient reductions
// with backward).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plan/step_cost.h"

namespace angle::plan {

struct Machine {
  double flops_per_thread = 5e10;   // achieved model FLOP/s of one thread (calibrated or given)
  // Calibrated: the FLOP/s of one thread at several batch sizes (rows per forward; small batches
  // run below the peak). Empty: flops_per_thread at every size.
  std::vector<std::pair<double, double>> flops_by_rows;
  double optimizer_s_per_param = 3e-9;  // one thread: AdamW update + zeroing the gradient, per parameter
  double copy_bytes_per_s = 5e9;        // one thread: memory copy (re-gathering the parameters)
  // Overlapped (asynchronous) collectives progress only when a rank enters MPI: while it computes,
  // its progress thread does every ANGLE_MPI_PROGRESS_US (100 us), the floor of their latency.
  double async_latency_s = 100e-6;
  double alpha_s = 5e-6;            // latency per message step (within a node)
  double beta_bytes_per_s = 5e9;    // bandwidth per link (within a node)
  // The same across nodes (a ring that spans nodes goes at its slowest link); 0: as within.
  double inter_alpha_s = 0, inter_beta_bytes_per_s = 0;
  // MPI on CPUs: the ranks' own cores copy and reduce the data, so a collective overlaps compute
  // only as far as cores are left idle. NCCL on GPUs moves data beside the kernels (false).
  bool comm_on_cores = false;
  // NCCL: an all-reduce takes the faster of the ring and the double binary tree
  // (2 ceil(log2 N) latencies, the buffer twice over the link), as NCCL's tuner does; MPI: the ring.
  bool tree_all_reduce = false;
  int64_t cores = 1;                // cores per node that the node's ranks share
  int64_t threads_per_rank = 1;
  int64_t ranks_per_node = 1;
};

// Seconds of one collective call of `bytes` (the rank's input) among n ranks, over m's (intra) link.
double collective_seconds(const std::string& op, uint64_t bytes, int64_t n, const Machine& m);

// The ranks each kind of call runs among (step_cost.h: Among), and the node size that decides
// whether they span nodes: the world and a shard group (consecutive ranks) when larger than a
// node, a replica group when it has more than one member and the world spans nodes.
struct RankGroups {
  int64_t world = 1, replicas = 1;
  RankGroups(int64_t world_ranks, int64_t replica_count = 1) : world(world_ranks), replicas(replica_count) {}  // NOLINT
  int64_t size(Among among) const;
  bool spans_nodes(Among among, int64_t ranks_per_node) const;
};

// FLOP/s of one thread at `rows` rows per forward.
double flops_at(const Machine& m, double rows);

struct StepTime {
  double compute = 0, optimizer = 0, comm = 0, exposed_comm = 0;
  double step() const { return compute + optimizer + exposed_comm; }
};

// `traffic`: rank 0's calls; `slowest_compute`: the FLOPs of the rank with the most work (a
// synchronous step waits for it); `node_flops`: the model FLOPs of all ranks sharing rank 0's node
// (with more threads than cores they share the cores, and a rank that waits gives its core to the
// others); `shard_params`: the parameters this rank updates; `gathered_bytes`: what it copies when
// the parameters are gathered again (stages 1 and 2).
StepTime step_time(const StepCost& traffic, const StepCost& slowest_compute, double node_flops, const RankGroups& ranks,
                   const Machine& m, int64_t shard_params, int64_t gathered_bytes);

}  // namespace angle::plan
