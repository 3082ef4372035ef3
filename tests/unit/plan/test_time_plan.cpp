// The time model's closed forms: ring all-gather / reduce-scatter / all-reduce, NCCL's tree
// all-reduce where faster, Open MPI's libnbc algorithms, nothing at one rank, each call over the
// link its ranks span (a node's link shared by its ranks' concurrent calls), the FLOP/s table interpolated in log(rows), and compute shared by
// the ranks of a node (at most one thread per rank, at most the node's cores).
#include <boost/test/unit_test.hpp>

#include "plan/calibrate.h"
#include "plan/time_plan.h"

using namespace angle;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(time_plan)

BOOST_AUTO_TEST_CASE(collective_costs_are_the_stated_closed_forms) {
  plan::Machine m;
  m.alpha_s = 1e-5, m.beta_bytes_per_s = 1e9;
  const uint64_t b = 1 << 20;
  BOOST_TEST(plan::collective_seconds("all_gather", b, 1, m) == 0.0);
  BOOST_TEST(plan::collective_seconds("all_gather", b, 4, m) == 3 * (1e-5 + b / 1e9), tt::tolerance(1e-12));
  BOOST_TEST(plan::collective_seconds("reduce_scatter", b, 4, m) == 3 * (1e-5 + b / 4.0 / 1e9), tt::tolerance(1e-12));
  BOOST_TEST(plan::collective_seconds("all_reduce", b, 4, m) == 6 * (1e-5 + b / 4.0 / 1e9), tt::tolerance(1e-12));
  BOOST_TEST(plan::collective_seconds("all_reduce", 8, 512, m) == 2 * 511 * (1e-5 + 8 / 512.0 / 1e9), tt::tolerance(1e-12));
  m.tree_all_reduce = true;  // NCCL: the faster of ring and double binary tree
  BOOST_TEST(plan::collective_seconds("all_reduce", 8, 512, m) == 2 * 9 * 1e-5 + 2 * 8 / 1e9, tt::tolerance(1e-12));
  BOOST_TEST(plan::collective_seconds("all_reduce", b, 4, m) == 6 * (1e-5 + b / 4.0 / 1e9), tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(calls_go_over_the_link_their_ranks_span) {
  // 16 ranks, 4 per node, 2 replicas of 8: a shard group spans 2 nodes, a replica group (2 ranks
  // on different nodes) spans too; with 4 replicas of 4 a shard group is one node.
  const plan::RankGroups two(16, 2), four(16, 4);
  BOOST_TEST(two.size(plan::Among::shard) == 8);
  BOOST_TEST(two.size(plan::Among::replica) == 2);
  BOOST_TEST(two.size(plan::Among::world) == 16);
  BOOST_TEST(two.spans_nodes(plan::Among::shard, 4));
  BOOST_TEST(!four.spans_nodes(plan::Among::shard, 4));
  BOOST_TEST(four.spans_nodes(plan::Among::replica, 4));
  BOOST_TEST(!plan::RankGroups(4, 2).spans_nodes(plan::Among::replica, 4));  // all on one node
  plan::Machine m;
  m.alpha_s = 1e-6, m.beta_bytes_per_s = 1e11, m.inter_alpha_s = 1e-5, m.inter_beta_bytes_per_s = 1e9;
  m.async_latency_s = 0, m.optimizer_s_per_param = 0, m.ranks_per_node = 4, m.flops_per_thread = 1e10;
  plan::StepCost work;
  work.calls = {{"step", "all_gather", 1000, plan::Among::shard}, {"step", "all_reduce", 4000, plan::Among::replica}};
  // With a link per rank (the default), each rank's replica all-reduce has its own; with one link
  // per node, the node's 4 ranks all-reduce with their replicas at once through it.
  const double within = 3 * (1e-6 + 1000 / 1e11), across = 2 * 3 * (1e-5 + 4000 / 4.0 / 1e9);
  BOOST_TEST(plan::step_time(work, work, 0, four, m, 0, 0).comm == within + across, tt::tolerance(1e-12));
  m.inter_links = 1;
  const double shared = 2 * 3 * (1e-5 + 4000 / 4.0 / (1e9 / 4));
  BOOST_TEST(plan::step_time(work, work, 0, four, m, 0, 0).comm == within + shared, tt::tolerance(1e-12));
  const plan::Placement replica = four.place(plan::Among::replica, 4), shard = two.place(plan::Among::shard, 4);
  BOOST_TEST((replica.ranks == 4 && replica.per_node == 1 && replica.sharing == 4 && replica.spans));
  BOOST_TEST((shard.ranks == 8 && shard.per_node == 4 && shard.sharing == 1 && shard.spans));
}

// Open MPI's libnbc algorithms (comm_on_cores), 4 ranks on 2 nodes of 2 and HSDP's all-reduce of 2
// replicas (one rank per node, both ranks of each node at once), each round over its link.
BOOST_AUTO_TEST_CASE(open_mpi_collectives_follow_libnbc_round_by_round) {
  plan::Machine m;
  m.comm_on_cores = true;
  const double ai = 1e-6, bi = 1e10, ax = 1e-4, bx = 1e8, b = 1 << 20;
  m.alpha_s = ai, m.beta_bytes_per_s = bi, m.inter_alpha_s = ax, m.inter_beta_bytes_per_s = bx;
  const plan::Placement world{4, 2, 1, true, 1}, replicas{2, 1, 2, true, 1};  // one link per node
  // Binomial reduce: distance 1 within the node, distance 2 across; then rank 0 scatters the pieces.
  BOOST_TEST(plan::collective_seconds("reduce_scatter", b, world, m) ==
                 (ai + b / bi) + (ax + b / bx) + ax + (b / 4) / bi + 2 * (b / 4) / bx, tt::tolerance(1e-12));
  // Linear: each node's link carries both of its ranks' parts to both ranks of the other node.
  BOOST_TEST(plan::collective_seconds("all_gather", b, world, m) == ax + b / bi + 4 * b / bx, tt::tolerance(1e-12));
  // In place: binomial reduce then broadcast of the whole buffer; two replica pairs share each link.
  BOOST_TEST(plan::collective_seconds("all_reduce", b, replicas, m) == 2 * (ax + 2 * b / bx), tt::tolerance(1e-12));
  // Within a node: every round on the one link.
  BOOST_TEST(plan::collective_seconds("all_reduce", b, 4, m) == 4 * (ai + b / bi), tt::tolerance(1e-12));
  BOOST_TEST(plan::collective_seconds("all_gather", b, 2, m) == ai + b / bi, tt::tolerance(1e-12));
  // A link per rank: HSDP's replica pairs do not share.
  BOOST_TEST(plan::collective_seconds("all_reduce", b, plan::Placement{2, 1, 2, true, 2}, m) == 2 * (ax + b / bx),
             tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(flops_table_and_core_sharing) {
  plan::Machine m;
  m.flops_by_rows = {{2, 1e10}, {8, 3e10}};
  BOOST_TEST(plan::flops_at(m, 1) == 1e10);
  BOOST_TEST(plan::flops_at(m, 4) == 2e10, tt::tolerance(1e-12));  // halfway in log(rows)
  BOOST_TEST(plan::flops_at(m, 64) == 3e10);
  plan::StepCost work;
  work.forward_flops = 1e10, work.backward_flops = 2e10, work.rows_per_forward = 8;
  m.cores = 2, m.threads_per_rank = 1, m.ranks_per_node = 4, m.optimizer_s_per_param = 0;
  // Four equal single-thread ranks on two cores: each computes at half a core.
  BOOST_TEST(plan::step_time(work, work, 4 * 3e10, 1, m, 0, 0).compute == 3e10 / (3e10 * 0.5), tt::tolerance(1e-12));
  // Unequal ones: the cores do the node's work, but no rank runs faster than one thread.
  BOOST_TEST(plan::step_time(work, work, 3e10 + 3 * 1e10, 1, m, 0, 0).compute == 6e10 / (3e10 * 2), tt::tolerance(1e-12));
  m.ranks_per_node = 2;
  BOOST_TEST(plan::step_time(work, work, 3e10 + 1e10, 1, m, 0, 0).compute == 1.0, tt::tolerance(1e-12));
  // The forward part keeps its share (what the forward's collectives overlap with).
  const plan::StepTime t = plan::step_time(work, work, 3e10, 1, m, 0, 0);
  BOOST_TEST(t.compute == 1.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(collectives_hide_behind_compute_only_where_they_can) {
  plan::Machine m;
  m.alpha_s = m.async_latency_s = 0, m.beta_bytes_per_s = 1e9, m.optimizer_s_per_param = 0;
  m.flops_per_thread = 1e10, m.cores = 4, m.threads_per_rank = 1, m.ranks_per_node = 2;
  plan::StepCost work;
  work.forward_flops = 1e10, work.backward_flops = 2e10;                 // 1 s + 2 s
  work.calls = {{"backward", "all_gather", 3'000'000'000}, {"step", "all_gather", 1'000'000'000}};  // 3 s + 1 s at n = 2
  auto exposed = [&](bool on_cores, int64_t ranks_per_node) {
    m.comm_on_cores = on_cores, m.ranks_per_node = ranks_per_node;
    return plan::step_time(work, work, 3e10, 2, m, 0, 0).exposed_comm;
  };
  BOOST_TEST(exposed(false, 2) == 1 + (3 - 2), tt::tolerance(1e-12));      // NCCL-like: backward hides 2 s
  BOOST_TEST(exposed(true, 2) == 1 + (3 - 0.5 * 2), tt::tolerance(1e-12));  // half the cores idle
  BOOST_TEST(exposed(true, 4) == 1 + 3, tt::tolerance(1e-12));              // every core computing
}

BOOST_AUTO_TEST_SUITE_END()

// The backend's name decides whether the plan costs collectives on the cores (MPI's libnbc, host
// staging) or beside the kernels (NCCL, whose name carries its device).
BOOST_AUTO_TEST_CASE(nccl_by_any_device_name_runs_beside_the_kernels) {
  BOOST_TEST(!plan::comm_on_cores("nccl (cuda:3)"));
  BOOST_TEST(!plan::comm_on_cores("nccl"));
  BOOST_TEST(plan::comm_on_cores("mpi"));
  BOOST_TEST(plan::comm_on_cores("mpi (cuda:0 staged through host)"));
  BOOST_TEST(plan::comm_on_cores("single"));
}
