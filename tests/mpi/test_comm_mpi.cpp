// Run under mpiexec with 2 or 4 ranks: every collective of the MPI backend against values each
// rank can compute alone, and the gradient of the cross-rank gathered AnglE loss against the
// single-process full-batch gradient (max abs difference <= 1e-6 in fp32), with uneven rows.
#define BOOST_TEST_MODULE angle_mpi_tests
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "comm/comm.h"
#include "loss/angle_loss.h"
#include "loss/gather.h"

using namespace angle;

namespace {
// ANGLE_TEST_BACKEND=nccl runs the same tests on CUDA tensors (launch/gpu-check.sh).
comm::Comm& world() {
  static std::unique_ptr<comm::Comm> c =
      comm::make_comm(std::getenv("ANGLE_TEST_BACKEND") ? std::getenv("ANGLE_TEST_BACKEND") : "mpi");
  return *c;
}
at::TensorOptions on(at::ScalarType type) { return at::TensorOptions().dtype(type).device(world().device()); }
}  // namespace

BOOST_AUTO_TEST_CASE(all_reduce_in_every_dtype) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  for (auto type : {at::kFloat, at::kDouble, at::kBFloat16, at::kInt, at::kLong}) {
    at::Tensor t = at::full({3}, r + 1, on(type));
    c.all_reduce_sum(t);
    BOOST_TEST(t.scalar_type() == type);
    BOOST_TEST(t[2].item<double>() == n * (n + 1) / 2.0, "dtype " << type);
  }
}

BOOST_AUTO_TEST_CASE(all_gather_rows_of_different_counts) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  at::Tensor local = at::full({r + 1, 2}, r, on(at::kFloat));  // rank r sends r+1 rows of value r
  at::Tensor all = c.all_gather_rows(local);
  BOOST_TEST_REQUIRE(all.size(0) == n * (n + 1) / 2);
  int64_t row = 0;
  for (int k = 0; k < n; ++k)
    for (int j = 0; j <= k; ++j, ++row) BOOST_TEST(all[row][1].item<float>() == k);
  at::Tensor none = c.all_gather_rows(at::zeros({r == 0 ? 0 : 1, 2}, on(at::kFloat)));  // a rank with no rows
  BOOST_TEST(none.size(0) == n - 1);
}

BOOST_AUTO_TEST_CASE(reduce_scatter_all_gather_and_broadcast) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  at::Tensor flat = at::arange(4 * n, on(at::kFloat)) * (r + 1);
  at::Tensor mine = c.reduce_scatter_sum(flat);  // chunk r of sum_k (k+1) * arange
  BOOST_TEST(at::allclose(mine.cpu(), at::arange(4 * r, 4 * r + 4, at::kFloat) * (n * (n + 1) / 2.0)));
  at::Tensor gathered = at::empty({4 * n}, on(at::kFloat));
  c.all_gather_into(at::full({4}, r, on(at::kFloat)), gathered);
  BOOST_TEST(gathered[4 * n - 1].item<float>() == n - 1);
  at::Tensor value = at::full({2}, r == n - 1 ? 7 : 0, on(at::kLong));
  c.broadcast(value, n - 1);
  BOOST_TEST(value[0].item<int64_t>() == 7);
  c.barrier();
  BOOST_TEST(c.history().back().op == "barrier");
}

BOOST_AUTO_TEST_CASE(gathered_loss_gradient_equals_single_process_gradient) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  // A global batch of pairs split unevenly: rank k holds k+1 pairs (2(k+1) zigzag rows).
  const int64_t pairs = n * (n + 1) / 2, dim = 16;
  at::manual_seed(5);  // the same global batch on every rank
  at::Tensor all = at::randn({2 * pairs, dim}).to(c.device());
  at::Tensor labels = at::randint(0, 6, {pairs}).to(at::kFloat).to(c.device());
  loss::Weights w;
  w.cosine_w = 1, w.ibn_w = 1, w.angle_w = 0.02;
  const int64_t begin = r * (r + 1);  // rows before rank r: 2 * (0 + 1 + ... + r)
  at::Tensor mine = all.narrow(0, begin, 2 * (r + 1)).clone().requires_grad_(true);
  auto value = loss::angle_objective(loss::Format::A, w, labels, loss::gather_rows_with_grad(mine, c));
  value.total.backward();
  at::Tensor full = all.clone().requires_grad_(true);
  auto reference = loss::angle_objective(loss::Format::A, w, labels, full);
  reference.total.backward();
  BOOST_TEST(std::abs(value.total.item<double>() - reference.total.item<double>()) <= 1e-6);
  double diff = (mine.grad() - full.grad().narrow(0, begin, 2 * (r + 1))).abs().max().item<double>();
  BOOST_TEST(diff <= 1e-6, "rank " << r << ": max |grad - single-process grad| = " << diff);
  // Summed over ranks, the row gradients cover the full gradient exactly once.
  at::Tensor padded = at::zeros_like(all);
  padded.narrow(0, begin, 2 * (r + 1)).copy_(mine.grad());
  c.all_reduce_sum(padded);
  BOOST_TEST((padded - full.grad()).abs().max().item<double>() <= 1e-6);
}
