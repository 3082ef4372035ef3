// The time half of `angle plan` (formulas in README "Planning"): compute from the model FLOPs of
// the rank's rows and a FLOP/s figure, communication from an alpha-beta model per collective call
// (ring all-gather / reduce-scatter / all-reduce, binomial-tree reduce), overlapped with compute
// where the sharding stage allows (stage 3's prefetched gathers with forward and backward, stage
// 2/3's gradient reductions with backward).
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
  double alpha_s = 5e-6;            // latency per message step
  double beta_bytes_per_s = 5e9;    // bandwidth per link
  // MPI on CPUs: the ranks' own cores copy and reduce the data, so a collective overlaps compute
  // only as far as cores are left idle. NCCL on GPUs moves data beside the kernels (false).
  bool comm_on_cores = false;
  // NCCL reduces along a pipelined ring ((N-1) latencies, the buffer once over the slowest link);
  // MPI's reduce of the sizes here is a binomial tree (false).
  bool ring_reduce = false;
  int64_t cores = 1;                // cores per node that the node's ranks share
  int64_t threads_per_rank = 1;
  int64_t ranks_per_node = 1;
};

// Seconds of one collective call of `bytes` (the rank's input) among n ranks.
double collective_seconds(const std::string& op, uint64_t bytes, int64_t n, const Machine& m);

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
StepTime step_time(const StepCost& traffic, const StepCost& slowest_compute, double node_flops, int64_t ranks,
                   const Machine& m, int64_t shard_params, int64_t gathered_bytes);

}  // namespace angle::plan
