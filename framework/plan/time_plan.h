// The time half of `angle plan` (formulas in README "Planning"): compute from the model FLOPs of
// the rank's rows and a FLOP/s figure, communication from an alpha-beta model per collective call,
// with the algorithms the backend runs (NCCL: ring all-gather / reduce-scatter / all-reduce, the
// all-reduce's double binary tree where that is faster, as NCCL's tuner picks; Open MPI: its
// nonblocking collectives, coll/libnbc), each step over the link it crosses (within a node, or
// across nodes, where a node's one link carries the traffic of all its ranks at once),
// overlapped with compute where the sharding stage allows (stage 3's prefetched gathers with
// forward and backward, stage 2/3's gradient reductions with backward).
#pragma once
#include <algorithm>
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
  // Links per node across nodes, shared by the node's ranks (one NIC per host); 0: one per rank
  // (a NIC per GPU, as DGX-class nodes have).
  int64_t inter_links = 0;
  // MPI on CPUs: the ranks' own cores copy and reduce the data, so a collective overlaps compute
  // only as far as cores are left idle; its collectives are Open MPI's libnbc algorithms
  // (collective_seconds). NCCL on GPUs moves data beside the kernels (false).
  bool comm_on_cores = false;
  // NCCL: an all-reduce takes the faster of the ring and the double binary tree
  // (2 ceil(log2 N) latencies, the buffer twice over the link), as NCCL's tuner does; MPI: the ring.
  bool tree_all_reduce = false;
  int64_t cores = 1;                // cores per node that the node's ranks share
  int64_t threads_per_rank = 1;
  int64_t ranks_per_node = 1;
};

// Where the ranks of one call sit (consecutive ranks fill a node): how many, how many of them on
// each node, whether they span nodes, how many groups on a node run the same call at once (each
// rank of a node is in one group: the node's ranks all run their replica all-reduce together),
// and the links across nodes that they share (Machine::inter_links).
struct Placement {
  int64_t ranks = 1, per_node = 1, sharing = 1;
  bool spans = false;
  int64_t links = 1;
  // The transfers that one link carries when `per_node_senders` of the node send at once (at least 1).
  double per_link(double per_node_senders) const {
    return std::max(1.0, per_node_senders / static_cast<double>(links));
  }
};

// Seconds of one collective call of `bytes` (the rank's input) over the ranks `where` places:
//   ring (NCCL, or no comm_on_cores)  all-gather (n-1)(a + b/B), reduce-scatter (n-1)(a + b/(nB)),
//        all-reduce 2(n-1)(a + b/(nB)), with NCCL the faster of that and the tree 2 ceil(log2 n) a + 2b/B;
//        B the slowest link's bandwidth, shared by the groups of a node that use one link.
//   Open MPI (comm_on_cores; comm/mpi_comm.cpp issues every call nonblocking, so coll/libnbc runs
//        it): all-reduce in place = a binomial reduce then a binomial broadcast of the whole
//        buffer; reduce-scatter = a binomial reduce to rank 0 then a linear scatter; all-gather =
//        linear (each rank sends its part to every other at once). Each round over the link it
//        crosses: at distance d it crosses nodes when d >= ranks per node, and a node's links then
//        carry every sender of the node.
double collective_seconds(const std::string& op, uint64_t bytes, const Placement& where, const Machine& m);
// The same among n ranks on one node.
double collective_seconds(const std::string& op, uint64_t bytes, int64_t n, const Machine& m);

// The ranks each kind of call runs among (step_cost.h: Among), and where they sit: the world and a
// shard group (consecutive ranks) span nodes when larger than a node, a replica group when it has
// more than one member and the world spans nodes (its members lie a shard group apart).
struct RankGroups {
  int64_t world = 1, replicas = 1;
  RankGroups(int64_t world_ranks, int64_t replica_count = 1) : world(world_ranks), replicas(replica_count) {}  // NOLINT
  int64_t size(Among among) const;
  bool spans_nodes(Among among, int64_t ranks_per_node) const;
  Placement place(Among among, int64_t ranks_per_node) const;
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
