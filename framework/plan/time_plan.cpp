#include "plan/time_plan.h"

#include <algorithm>
#include <cmath>

#include "comm/comm.h"

namespace angle::plan {

double collective_seconds(const std::string& op, uint64_t bytes, int64_t n, const Machine& m) {
  if (n <= 1) return 0;
  const double b = static_cast<double>(bytes), steps = static_cast<double>(n - 1), a = m.alpha_s,
               bw = m.beta_bytes_per_s;
  if (op == "all_gather") return steps * (a + b / bw);                       // ring: n-1 steps of b
  if (op == "reduce_scatter") return steps * (a + b / static_cast<double>(n) / bw);  // ring: n-1 steps of b/n
  if (op == "all_reduce") {
    const double ring = 2 * steps * (a + b / static_cast<double>(n) / bw);  // reduce-scatter + all-gather
    const double tree = 2 * std::ceil(std::log2(static_cast<double>(n))) * a + 2 * b / bw;  // up, then down
    return m.tree_all_reduce ? std::min(ring, tree) : ring;
  }
  return std::ceil(std::log2(static_cast<double>(n))) * (a + b / bw);  // anything else: a binomial tree
}

int64_t RankGroups::size(Among among) const {
  if (among == Among::shard) return world / replicas;
  return among == Among::replica ? replicas : world;
}

bool RankGroups::spans_nodes(Among among, int64_t ranks_per_node) const {
  if (among == Among::replica) return replicas > 1 && world > ranks_per_node;
  return size(among) > ranks_per_node;
}

double flops_at(const Machine& m, double rows) {
  const auto& t = m.flops_by_rows;
  if (t.empty()) return m.flops_per_thread;
  if (rows <= t.front().first) return t.front().second;
  if (rows >= t.back().first) return t.back().second;
  for (size_t i = 1; i < t.size(); ++i)
    if (rows <= t[i].first) {  // linear in log(rows)
      const double x = (std::log(rows) - std::log(t[i - 1].first)) / (std::log(t[i].first) - std::log(t[i - 1].first));
      return t[i - 1].second + x * (t[i].second - t[i - 1].second);
    }
  return t.back().second;
}

StepTime step_time(const StepCost& traffic, const StepCost& slowest_compute, double node_flops, const RankGroups& ranks,
                   const Machine& m, int64_t shard_params, int64_t gathered_bytes) {
  // A rank computes with its threads; the node's ranks together with at most its cores (the
  // slower of the two bounds: processor sharing, where a rank that waits frees its core).
  const double threads = static_cast<double>(m.threads_per_rank), cores = static_cast<double>(m.cores);
  const double rate = flops_at(m, slowest_compute.rows_per_forward);
  const double slowest = slowest_compute.forward_flops + slowest_compute.backward_flops;
  StepTime t;
  t.compute = slowest > 0 ? std::max(slowest / (rate * threads), node_flops / (rate * cores)) : 0;
  const double forward = slowest > 0 ? t.compute * slowest_compute.forward_flops / slowest : 0,
               backward = t.compute - forward;
  // The optimizer's work is the same on every rank (its shard): the same sharing of the cores.
  const double share = std::min(threads, cores / static_cast<double>(std::max<int64_t>(1, m.ranks_per_node)));
  t.optimizer = (static_cast<double>(shard_params) * m.optimizer_s_per_param +
                 static_cast<double>(gathered_bytes) / m.copy_bytes_per_s) / share;
  double during_forward = 0, during_backward = 0, serial = 0;
  for (const Call& c : traffic.calls) {
    const bool async = c.phase == "forward" || c.phase == "backward";
    Machine link = m;
    if (ranks.spans_nodes(c.among, m.ranks_per_node)) {
      if (m.inter_alpha_s > 0) link.alpha_s = m.inter_alpha_s;
      if (m.inter_beta_bytes_per_s > 0) link.beta_bytes_per_s = m.inter_beta_bytes_per_s;
    }
    if (async) link.alpha_s = std::max(link.alpha_s, m.async_latency_s);
    const int64_t n = ranks.size(c.among);
    // NCCL gathers a small set of rows as an all-reduce of the zero-filled whole (comm/nccl_comm.cpp).
    const bool as_sum = c.rows && m.tree_all_reduce && n * c.bytes <= comm::kSmallRowsBytes;
    const double s = as_sum ? collective_seconds("all_reduce", n * c.bytes, n, link)
                            : collective_seconds(c.op, c.bytes, n, link);
    t.comm += s;
    if (c.phase == "forward") during_forward += s;
    else if (c.phase == "backward") during_backward += s;
    else serial += s;
  }
  // The part of the compute that collectives can hide behind: all of it when they move data on
  // their own, else the idle cores' share.
  const double busy = threads * static_cast<double>(std::max<int64_t>(1, m.ranks_per_node));
  const double hiding = m.comm_on_cores ? std::max(0.0, 1 - busy / cores) : 1.0;
  t.exposed_comm = serial + std::max(0.0, during_forward - hiding * forward) +
                   std::max(0.0, during_backward - hiding * backward);
  return t;
}

}  // namespace angle::plan
