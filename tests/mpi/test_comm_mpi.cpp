// Run under mpiexec with 2 or 4 ranks: every collective of the MPI backend against values each
// rank can compute alone (split communicators too), and the gradient of the cross-rank gathered AnglE loss against the
// single-process full-batch gradient (max abs difference <= 1e-6 in fp32), with uneven rows, for
// every format (hard negatives must stay with their queries) and with per-example weights.
#define BOOST_TEST_MODULE angle_mpi_tests
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "comm/comm.h"
#include "comm/host_staged_comm.h"
#include "comm/placement.h"
#include "loss/angle_loss.h"
#include "loss/gather.h"
#include "model/encoder.h"
#include "model/storage.h"
#include "model/weights.h"
#include "shard/fsdp.h"
#include "tiny_model.h"
#include "train/encode.h"
#include "train/micro_batch_loss.h"

using namespace angle;

namespace {
// ANGLE_TEST_BACKEND=nccl runs the same tests on CUDA tensors (launch/gpu-check.sh);
// ANGLE_TEST_BACKEND=mpi-staged through host staging (comm/host_staged_comm.h): CUDA tensors where
// a GPU is visible (several ranks sharing it), else CPU tensors, copied through host buffers all
// the same.
comm::Comm& world() {
  static std::unique_ptr<comm::Comm> c = [] {
    const std::string backend = std::getenv("ANGLE_TEST_BACKEND") ? std::getenv("ANGLE_TEST_BACKEND") : "mpi";
    if (backend != "mpi-staged") return comm::make_comm(backend);
    if (!at::hasCUDA()) return comm::make_host_staged(comm::make_comm("mpi"), at::kCPU);
    comm::PlacementRequest request;
    request.backend = "mpi", request.cuda = true, request.host_staging = true;
    return comm::make_comm(request);
  }();
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
  std::vector<int64_t> counts;
  for (int k = 0; k < n; ++k) counts.push_back(2 * (k + 1));
  auto value = loss::angle_objective(loss::Format::A, w, labels, loss::gather_rows_with_grad(mine, c, counts));
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

// The trainer's loss phase (train/micro_batch_loss.h) on formats A, B and C with weights: rank k
// holds k + 1 examples. The loss and each rank's row gradients equal the single-process ones on
// the global batch; rows sent in another layout (the sentence-transformers bug: a rank's queries,
// then its positives, then its negatives, read as if interleaved per example) give another loss.
BOOST_AUTO_TEST_CASE(gathered_loss_of_every_format_keeps_examples_aligned) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  const int64_t examples = n * (n + 1) / 2, dim = 16, first = r * (r + 1) / 2, mine = r + 1;
  for (auto format : {loss::Format::A, loss::Format::B, loss::Format::C}) {
    const int64_t k = loss::rows_per_example(format);
    at::manual_seed(6);  // the same global batch on every rank
    at::Tensor all = at::randn({k * examples, dim}).to(c.device());
    at::Tensor labels = at::randint(0, 6, {examples}).to(at::kFloat);
    at::Tensor weights = at::rand({examples}) + 0.25;
    train::StepBatch batch;
    batch.rows_per_example = k;
    batch.labels = labels.narrow(0, first, mine);
    batch.weights = weights.narrow(0, first, mine);
    for (int q = 0; q < n; ++q) batch.kept_per_rank.push_back(q + 1);
    train::LossSettings settings;
    settings.format = format;
    settings.weights.cosine_w = 1, settings.weights.angle_w = 0.1;
    settings.example_weights = true;
    at::Tensor local = all.narrow(0, k * first, k * mine).clone().requires_grad_(true);
    auto value = train::micro_batch_loss(local, batch, settings, c);
    value.total.backward();
    at::Tensor full = all.clone().requires_grad_(true);
    auto reference = loss::angle_objective(format, settings.weights, labels.to(c.device()), full, weights.to(c.device()));
    reference.total.backward();
    BOOST_TEST(std::abs(value.value - reference.total.item<double>()) <= 1e-6 * std::max(1.0, std::abs(value.value)));
    const double diff = (local.grad() - full.grad().narrow(0, k * first, k * mine)).abs().max().item<double>();
    BOOST_TEST(diff <= 1e-6, "format " << k << " rows, rank " << r << ": max |grad - single-process grad| = " << diff);
    if (format == loss::Format::A) continue;
    // Column-grouped rows (q0 q1 .. p0 p1 .. n0 n1 ..) read as interleaved: misaligned examples.
    at::Tensor grouped = local.detach().view({mine, k, dim}).transpose(0, 1).reshape({k * mine, dim});
    const double misaligned = train::micro_batch_loss(grouped, batch, settings, c).value;
    BOOST_TEST(std::abs(misaligned - reference.total.item<double>()) > 1e-3, "a misaligned layout must change the loss");
  }
}

// Gradient caching when ranks need different numbers of chunks: rank 0 holds 5 examples (3 chunks
// of 2), rank 1 none or 1 (it runs dummy chunks), the others 2. Every stage: each rank's gradient
// with chunks equals the one without (dropout 0), so the collectives of the extra passes matched.
BOOST_AUTO_TEST_CASE(gradient_caching_with_uneven_chunk_counts) {
  auto& c = world();
  if (c.device().is_cuda()) return;  // the tiny model runs on the CPU
  const int r = c.rank(), n = c.size();
  testing::TempDir dir;
  testing::write_tiny_model(dir.path);  // the same seed on every rank: the same model
  for (int64_t rank1 : {0, 1}) {
    std::vector<int64_t> kept;
    for (int q = 0; q < n; ++q) kept.push_back(q == 0 ? 5 : q == 1 ? rank1 : 2);
    std::vector<std::vector<int64_t>> ids;
    at::manual_seed(20 + r);
    for (int64_t i = 0; i < 3 * kept[r]; ++i) {
      std::vector<int64_t> row{2};
      for (int64_t t = 0, length = at::randint(1, 8, {1}).item<int64_t>(); t < length; ++t)
        row.push_back(at::randint(5, 24, {1}).item<int64_t>());
      row.push_back(3);
      ids.push_back(row);
    }
    train::StepBatch batch;
    for (const auto& row : ids) batch.rows.push_back(&row), batch.row_keys.push_back(0);  // (dropout 0)
    batch.rows_per_example = 3;
    batch.labels = at::zeros({kept[r]});
    batch.weights = at::ones({kept[r]});
    batch.kept_per_rank = kept;
    train::LossSettings settings;
    settings.format = loss::Format::C;
    for (int stage : {1, 2, 3}) {
      std::vector<at::Tensor> grads;
      for (int64_t chunk : {0, 2}) {
        model::EncoderOptions options;
        options.pooling = "mean";
        options.dropout = 0.0;
        model::Encoder encoder = model::load_encoder(dir.path.string(), options);
        encoder.model->train(true);
        shard::ShardOptions shard_options;
        shard_options.stage = stage;
        shard::ShardedModel sharded(*encoder.model, c, shard_options, [](const std::string&) { return true; });
        train::forward_backward(encoder, sharded, batch, {false, chunk}, [&](const at::Tensor& embeddings) {
          return train::micro_batch_loss(embeddings, batch, settings, c).total;
        });
        grads.push_back(sharded.owned("grads").clone());
      }
      const double gap = (grads[1] - grads[0]).abs().max().item<double>() /
                         std::max(grads[0].abs().max().item<double>(), 1e-3);
      BOOST_TEST(gap <= 1e-5, "stage " << stage << ", rank 1 with " << rank1 << " examples, rank " << r << ": " << gap);
    }
  }
}

// Sharded loading (model/encoder.h defer_weights): each rank reads only its slices of the weights
// files, the model's own tensors never filled. Against the second path, a model loaded whole and
// then sharded: the same owned slices at every stage, and the same full parameters gathered back.
BOOST_AUTO_TEST_CASE(loading_by_slices_equals_loading_whole) {
  auto& c = world();
  if (c.device().is_cuda()) return;  // the tiny model runs on the CPU
  testing::TempDir dir;
  testing::write_tiny_model(dir.path, testing::tiny_config_json(), 11);
  for (int stage : {1, 2, 3}) {
    shard::ShardOptions shard_options;
    shard_options.stage = stage;
    std::vector<at::Tensor> owned, full;
    for (bool defer : {false, true}) {
      model::EncoderOptions options;
      options.defer_weights = defer;
      model::Encoder encoder = model::load_encoder(dir.path.string(), options);
      bool released = true;
      for (const auto& [name, param] : encoder.model->named_parameters()) released = released && !model::has_storage(param);
      BOOST_TEST(released == defer, "stage " << stage << ": parameters released " << released);
      BOOST_TEST(static_cast<bool>(encoder.weights) == defer);
      shard::ShardedModel sharded(*encoder.model, c, shard_options, [](const std::string&) { return true; },
                                  encoder.weights.get());
      owned.push_back(sharded.owned("params").clone());
      sharded.gather_full();
      at::Tensor all;
      for (const auto& [name, param] : encoder.model->named_parameters())
        all = all.defined() ? at::cat({all, param.reshape(-1)}) : param.reshape(-1).clone();
      full.push_back(all);
      sharded.release_full();
    }
    BOOST_TEST(at::equal(owned[0], owned[1]), "stage " << stage << ", rank " << c.rank());
    BOOST_TEST(at::equal(full[0], full[1]), "stage " << stage << ", rank " << c.rank());
  }
}

BOOST_AUTO_TEST_CASE(asynchronous_collectives_and_bf16_words) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  // Rank r contributes r+1 rows: the counts come back with the rows.
  std::vector<int64_t> counts;
  at::Tensor rows = c.all_gather_rows(at::full({r + 1, 3}, static_cast<double>(r), on(at::kDouble)), &counts);
  for (int k = 0; k < n; ++k) BOOST_TEST(counts[k] == k + 1);
  BOOST_TEST(rows.size(0) == n * (n + 1) / 2);
  // Two collectives in flight at once, waited in reverse order.
  at::Tensor chunk = at::arange(4, on(at::kFloat)) + 10 * r, gathered = at::empty({4 * n}, on(at::kFloat));
  at::Tensor flat = at::arange(2 * n, on(at::kFloat)) * (r + 1), mine = at::empty({2}, on(at::kFloat));
  auto gather = c.all_gather_into_async(chunk, gathered);
  auto reduce = c.reduce_scatter_sum_async(flat, mine);
  reduce->wait();
  gather->wait();
  for (int k = 0; k < n; ++k) BOOST_TEST(gathered[4 * k + 3].item<float>() == 3 + 10 * k);
  const float total = n * (n + 1) / 2.0f;  // sum over ranks of (r + 1)
  BOOST_TEST(mine[0].item<float>() == 2 * r * total);
  BOOST_TEST(mine[1].item<float>() == (2 * r + 1) * total);
  // bf16 moves as 16-bit words (exact) and sums with the bf16 operator (each partial sum rounded).
  at::Tensor bf = (at::arange(2 * n, on(at::kFloat)) / 3 + r).to(at::kBFloat16), bf_mine = at::empty({2}, on(at::kBFloat16));
  c.reduce_scatter_sum_async(bf, bf_mine)->wait();
  at::Tensor expected = (at::arange(2 * n, on(at::kFloat)) / 3).to(at::kBFloat16).to(at::kFloat) * n + total - n;
  BOOST_TEST((bf_mine.to(at::kFloat) - expected.narrow(0, 2 * r, 2)).abs().max().item<float>() <= 0.02f * n * n);
  at::Tensor bf_all = at::empty({2 * n * n}, on(at::kBFloat16));
  c.all_gather_into(bf, bf_all);
  BOOST_TEST(at::equal(bf_all.narrow(0, 2 * n * r, 2 * n), bf));
  // Pieces of different sizes (one rank's empty): rank k's piece of `flat` holds k + 1 elements
  // except the last rank's, which holds none; each element of rank r's flat is r + 1 + its index.
  std::vector<int64_t> piece_counts;
  for (int k = 0; k < n; ++k) piece_counts.push_back(k == n - 1 ? 0 : k + 1);
  const int64_t elements = n * (n - 1) / 2;
  at::Tensor pieces = at::arange(elements, on(at::kFloat)) + (r + 1), got = at::full({piece_counts[r]}, -1.0f, on(at::kFloat));
  c.reduce_scatter_counts_async(pieces, got, piece_counts)->wait();
  const int64_t begin = r * (r + 1) / 2;  // where rank r's piece starts
  for (int64_t i = 0; i < piece_counts[r]; ++i) BOOST_TEST(got[i].item<float>() == n * (begin + i) + total, "element " << i);
  // The asynchronous all-reduce, in place.
  at::Tensor sum = at::full({3}, static_cast<double>(r + 1), on(at::kDouble));
  c.all_reduce_sum_async(sum)->wait();
  BOOST_TEST(sum[2].item<double>() == total);
}

BOOST_AUTO_TEST_CASE(split_communicators_and_their_counters) {
  auto& c = world();
  const int r = c.rank(), n = c.size();
  (void)c.take_calls(), (void)c.take_bytes();
  // Even and odd ranks; ordered by descending rank inside each.
  std::unique_ptr<comm::Comm> half = c.split(r % 2, -r);
  const int members = (n + 1 - r % 2) / 2;
  BOOST_TEST(half->size() == members);
  int above = 0;  // ranks of the same parity above r come first
  for (int k = r + 2; k < n; k += 2) ++above;
  BOOST_TEST(half->rank() == above);
  at::Tensor t = at::full({2}, r, on(at::kLong));
  half->all_reduce_sum(t);
  int64_t expected = 0;
  for (int k = r % 2; k < n; k += 2) expected += k;
  BOOST_TEST(t[1].item<int64_t>() == expected);
  // The world still works beside it, and counts the split's collectives as its own.
  at::Tensor w = at::ones({1}, on(at::kLong));
  auto async = half->all_reduce_sum_async(t);
  c.all_reduce_sum(w);
  async->wait();
  BOOST_TEST(w[0].item<int64_t>() == n);
  BOOST_TEST(c.take_calls() == 4u);  // split, two on the half, one on the world
  BOOST_TEST(c.take_bytes() == 2 * 16u + 8u);
  BOOST_TEST(half->node_size() == c.node_size());
}
