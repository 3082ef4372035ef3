#include "plan/time_plan.h"

#include <algorithm>
#include <cmath>

#include "comm/comm.h"

namespace angle::plan {

namespace {

struct Link {
  double alpha, beta;
  double seconds(double bytes, double flows = 1) const { return alpha + bytes * flows / beta; }
};

// NCCL's algorithms (or plain rings): every step at the slowest link's pace.
double ring_seconds(const std::string& op, double b, const Placement& p, Link link, bool tree) {
  const auto n = static_cast<double>(p.ranks);
  if (p.spans) link.beta /= p.per_link(static_cast<double>(p.sharing));
  if (op == "all_gather") return (n - 1) * link.seconds(b);      // n-1 steps of b
  if (op == "reduce_scatter") return (n - 1) * link.seconds(b / n);  // n-1 steps of b/n
  if (op == "all_reduce") {
    const double ring = 2 * (n - 1) * link.seconds(b / n);  // reduce-scatter + all-gather
    const double up_down = 2 * std::ceil(std::log2(n)) * link.alpha + 2 * b / link.beta;
    return tree ? std::min(ring, up_down) : ring;
  }
  return std::ceil(std::log2(n)) * link.seconds(b);  // anything else: a binomial tree
}

// Open MPI 4.1's coll/libnbc (see collective_seconds).
double libnbc_seconds(const std::string& op, double b, const Placement& p, const Link& intra, const Link& inter) {
  const int64_t n = p.ranks, k = p.spans ? p.per_node : n;
  const auto rounds = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(n))));
  auto tree_pass = [&](double bytes) {  // a binomial reduce (or broadcast) of `bytes`
    double s = 0;
    for (int64_t r = 1; r <= rounds; ++r) {
      const int64_t distance = int64_t{1} << (r - 1), senders = std::max<int64_t>(1, k >> r);
      s += distance >= k ? inter.seconds(bytes, p.per_link(static_cast<double>(senders * p.sharing))) : intra.seconds(bytes);
    }
    return s;
  };
  const double local = static_cast<double>(k - 1), remote = static_cast<double>(n - k);
  const Link& first = p.spans ? inter : intra;  // the slower latency of a linear exchange
  if (op == "all_reduce") return 2 * tree_pass(b);
  if (op == "reduce_scatter") {  // rank 0 sends each rank its piece
    const double piece = b / static_cast<double>(n);
    return tree_pass(b) + first.alpha + local * piece / intra.beta +
           remote * piece * p.per_link(static_cast<double>(p.sharing)) / inter.beta;
  }
  if (op == "all_gather")  // a node's links carry each of its ranks' parts to every rank elsewhere
    return first.alpha + local * b / intra.beta + p.per_link(static_cast<double>(k * p.sharing)) * remote * b / inter.beta;
  return tree_pass(b);
}

}  // namespace

double collective_seconds(const std::string& op, uint64_t bytes, const Placement& where, const Machine& m) {
  if (where.ranks <= 1) return 0;
  const Link intra{m.alpha_s, m.beta_bytes_per_s};
  const Link inter{m.inter_alpha_s > 0 ? m.inter_alpha_s : m.alpha_s,
                   m.inter_beta_bytes_per_s > 0 ? m.inter_beta_bytes_per_s : m.beta_bytes_per_s};
  const auto b = static_cast<double>(bytes);
  if (m.comm_on_cores) return libnbc_seconds(op, b, where, intra, inter);
  return ring_seconds(op, b, where, where.spans ? inter : intra, m.tree_all_reduce);
}

double collective_seconds(const std::string& op, uint64_t bytes, int64_t n, const Machine& m) {
  return collective_seconds(op, bytes, Placement{n, n, 1, false}, m);
}

int64_t RankGroups::size(Among among) const {
  if (among == Among::shard) return world / replicas;
  return among == Among::replica ? replicas : world;
}

bool RankGroups::spans_nodes(Among among, int64_t ranks_per_node) const {
  if (among == Among::replica) return replicas > 1 && world > ranks_per_node;
  return size(among) > ranks_per_node;
}

Placement RankGroups::place(Among among, int64_t ranks_per_node) const {
  Placement p;
  p.ranks = size(among);
  p.spans = spans_nodes(among, ranks_per_node);
  if (!p.spans) return {p.ranks, p.ranks, 1, false};
  // A replica group's members lie a shard group apart: one per node once a shard group fills one.
  const int64_t apart = among == Among::replica ? size(Among::shard) : 1;
  p.per_node = std::clamp<int64_t>(ranks_per_node / apart, 1, p.ranks);
  p.sharing = std::max<int64_t>(1, ranks_per_node / p.per_node);
  return p;
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
    if (async) {
      link.alpha_s = std::max(link.alpha_s, m.async_latency_s);
      link.inter_alpha_s = std::max(m.inter_alpha_s > 0 ? m.inter_alpha_s : m.alpha_s, m.async_latency_s);
    }
    Placement where = ranks.place(c.among, m.ranks_per_node);
    where.links = m.inter_links > 0 ? m.inter_links : m.ranks_per_node;
    const int64_t n = where.ranks;
    // NCCL gathers a small set of rows as an all-reduce of the zero-filled whole (comm/nccl_comm.cpp).
    const bool as_sum = c.rows && m.tree_all_reduce && n * c.bytes <= comm::kSmallRowsBytes;
    const double s = as_sum ? collective_seconds("all_reduce", n * c.bytes, where, link)
                            : collective_seconds(c.op, c.bytes, where, link);
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
