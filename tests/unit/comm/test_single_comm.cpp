// The communicator's bookkeeping, on the single-process backend (the MPI backend's collectives
// run under mpiexec in tests/mpi): every collective recorded in order with its shape and dtype,
// the ring of the last 16, the payload bytes counted as numel x element size, and the factory's
// error for an unknown backend.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "comm/comm.h"
#include "tiny_model.h"

using namespace angle;

BOOST_AUTO_TEST_SUITE(single_comm)

BOOST_AUTO_TEST_CASE(collectives_are_identities_and_counted) {
  auto comm = comm::make_comm("single");
  BOOST_TEST(comm->size() == 1);
  BOOST_TEST(comm->backend() == "single");
  at::Tensor x = at::arange(6, at::kFloat).view({3, 2});
  at::Tensor sum = x.clone();
  comm->all_reduce_sum(sum);
  BOOST_TEST(at::equal(sum, x));
  std::vector<int64_t> counts;
  at::Tensor rows = comm->all_gather_rows(x, &counts);
  BOOST_TEST(at::equal(rows, x));
  BOOST_TEST(counts == std::vector<int64_t>({3}), boost::test_tools::per_element());
  at::Tensor flat = at::zeros({6}, at::kFloat);
  comm->all_gather_into(x.reshape({-1}), flat);
  BOOST_TEST(at::equal(flat, x.reshape({-1})));
  // bytes: 24 (all_reduce) + 8 (the row count) + 24 (rows) + 24 (gather)
  BOOST_TEST(comm->take_bytes() == 80u);
  BOOST_TEST(comm->take_bytes() == 0u);  // taken: reset
  const auto history = comm->history();
  BOOST_TEST_REQUIRE(history.size() == 4u);
  BOOST_TEST(history[0].op == "all_reduce");
  BOOST_TEST(history[1].op == "all_gather_counts");
  BOOST_TEST(history[2].op == "all_gather_rows");
  BOOST_TEST(history[2].shape == "[3, 2]");
  BOOST_TEST(history[2].dtype == "Float");
  BOOST_TEST(history[3].sequence == 3u);
}

BOOST_AUTO_TEST_CASE(history_keeps_the_last_sixteen_in_order) {
  auto comm = comm::make_comm("single");
  at::Tensor x = at::ones({2}, at::kLong);
  for (int i = 0; i < 20; ++i) comm->all_reduce_sum(x);
  const auto history = comm->history();
  BOOST_TEST_REQUIRE(history.size() == 16u);
  for (size_t i = 0; i < history.size(); ++i) BOOST_TEST(history[i].sequence == 4 + i);
  BOOST_TEST(history.back().dtype == "Long");
}

BOOST_AUTO_TEST_CASE(unknown_backend_is_an_error_naming_the_choices) {
  const std::string message = testing::error_of([] { comm::make_comm("gloo"); });
  BOOST_TEST(message.find("unknown communication backend 'gloo'") != std::string::npos);
  BOOST_TEST(message.find("auto, single, mpi, nccl") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
