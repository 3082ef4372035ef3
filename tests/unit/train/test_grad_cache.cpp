// Gradient caching (train/encode.h) at one rank, every sharding stage: the gradient of the
// cached two-pass encode equals the gradient of one graph over the same chunks, with dropout off
// (1e-6) and on (1e-5: the second pass must see the first pass's masks), and the gradient of one
// pass over the unchunked batch within fp32 rounding of the different padding (1e-5), with dropout
// on too: the masks are keyed by text (model/dropout.h), not by how the batch is cut.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "comm/comm.h"
#include "model/encoder.h"
#include "shard/fsdp.h"
#include "tiny_model.h"
#include "train/encode.h"
#include "train/micro_batch_loss.h"

using namespace angle;

namespace {

bool decays(const std::string& name) { return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos); }

// Format C: 6 examples of 3 random token rows (lengths 3..9), all kept at one rank.
struct Batch {
  std::vector<std::vector<int64_t>> ids;
  train::StepBatch batch;
  Batch(int64_t examples, uint64_t key_seed) {
    at::manual_seed(11);
    for (int64_t i = 0; i < 3 * examples; ++i) {
      const int64_t length = at::randint(1, 8, {1}, at::kLong).item<int64_t>();
      std::vector<int64_t> row{2};  // [CLS] ... [SEP] of the tiny vocabulary
      for (int64_t t = 0; t < length; ++t) row.push_back(at::randint(5, 24, {1}, at::kLong).item<int64_t>());
      row.push_back(3);
      ids.push_back(row);
    }
    for (const auto& row : ids) {
      batch.rows.push_back(&row);
      batch.row_keys.push_back(static_cast<int64_t>(key_seed * 1000 + batch.row_keys.size()));
    }
    batch.rows_per_example = 3;
    batch.labels = at::zeros({examples}, at::kFloat);
    batch.weights = at::rand({examples}, at::kFloat) + 0.5;
    batch.kept_per_rank = {examples};
  }
};

train::LossSettings settings() {
  train::LossSettings s;
  s.format = loss::Format::C;
  s.weights = loss::Weights::preset("current");
  s.weights.cosine_w = 0.5;
  s.example_weights = true;
  return s;
}

model::Encoder tiny_encoder(const testing::TempDir& dir, double dropout) {
  model::EncoderOptions options;
  options.pooling = "mean";
  options.dropout = dropout;
  model::Encoder encoder = model::load_encoder(dir.path.string(), options);
  encoder.model->train(true);
  return encoder;
}

// The flat gradient of GradCache (chunk > 0) or of one pass (chunk 0) through the sharder.
at::Tensor sharded_gradient(const testing::TempDir& dir, double dropout, int stage, int64_t chunk, uint64_t seed) {
  model::Encoder encoder = tiny_encoder(dir, dropout);
  auto comm = comm::make_comm("single");
  shard::ShardOptions options;
  options.stage = stage;
  shard::ShardedModel sharded(*encoder.model, *comm, options, decays);
  Batch b(6, seed);
  train::forward_backward(encoder, sharded, b.batch, {false, chunk}, [&](const at::Tensor& embeddings) {
    return train::micro_batch_loss(embeddings, b.batch, settings(), *comm).total;
  });
  return sharded.owned("grads").clone();
}

// One graph over the micro-batch, encoded in chunks of `chunk` examples (each padded to its own
// longest row, as GradCache's chunks are), on the plain model.
at::Tensor one_graph_gradient(const testing::TempDir& dir, double dropout, int64_t chunk, uint64_t seed) {
  model::Encoder encoder = tiny_encoder(dir, dropout);
  auto comm = comm::make_comm("single");
  Batch b(6, seed);
  std::vector<at::Tensor> parts;
  for (size_t begin = 0; begin < b.batch.rows.size(); begin += 3 * chunk) {
    std::vector<const std::vector<int64_t>*> rows(b.batch.rows.begin() + begin,
                                                  b.batch.rows.begin() + std::min(b.batch.rows.size(), begin + 3 * chunk));
    const std::vector<int64_t> keys(b.batch.row_keys.begin() + begin, b.batch.row_keys.begin() + begin + rows.size());
    model::TokenBatch tokens = encoder.collate(rows);
    at::Tensor hidden = encoder.model->forward(tokens.input_ids, tokens.attention_mask, nullptr, at::tensor(keys));
    parts.push_back(model::pool(hidden, tokens.attention_mask, encoder.pooling));
  }
  train::micro_batch_loss(at::cat(parts), b.batch, settings(), *comm).total.backward();
  std::vector<at::Tensor> grads;
  for (const auto& [name, p] : encoder.model->named_parameters())
    grads.push_back(p.grad().defined() ? p.grad().flatten() : at::zeros({p.numel()}));
  return at::cat(grads);
}

double relative_gap(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(grad_cache)

BOOST_AUTO_TEST_CASE(cached_gradient_equals_one_graph_at_every_stage) {
  testing::TempDir dir;
  testing::write_tiny_model(dir.path);
  const at::Tensor whole = one_graph_gradient(dir, 0.0, 6, 1);  // no chunks at all
  BOOST_TEST_REQUIRE(whole.abs().max().item<double>() > 1e-3);
  const at::Tensor whole_dropping = one_graph_gradient(dir, 0.1, 6, 5);
  BOOST_TEST_REQUIRE(relative_gap(whole_dropping, whole) > 1e-3);  // the masks matter
  for (int stage : {1, 2, 3}) {
    for (int64_t chunk : {1, 2, 4}) {  // 4: chunks of 4 and 2 examples
      // Against one graph over the same chunks (the same padding per chunk): only the caching differs.
      for (double dropout : {0.0, 0.1}) {
        const double gap = relative_gap(sharded_gradient(dir, dropout, stage, chunk, 5),
                                        one_graph_gradient(dir, dropout, chunk, 5));
        BOOST_TEST(gap <= (dropout == 0 ? 1e-6 : 1e-5), "dropout " << dropout << ", stage " << stage << ", chunk "
                                                                  << chunk << ": " << gap);
      }
      // Against one pass over the whole batch: chunks are padded to their own longest row, which
      // changes fp32 rounding only, with dropout on too.
      const double gap = relative_gap(sharded_gradient(dir, 0.0, stage, chunk, 1), whole);
      BOOST_TEST(gap <= 1e-5, "no chunks, stage " << stage << ", chunk " << chunk << ": " << gap);
      const double dropping = relative_gap(sharded_gradient(dir, 0.1, stage, chunk, 5), whole_dropping);
      BOOST_TEST(dropping <= 1e-5, "dropout, no chunks, stage " << stage << ", chunk " << chunk << ": " << dropping);
    }
    BOOST_TEST(relative_gap(sharded_gradient(dir, 0.0, stage, 0, 1), whole) <= 1e-6);
  }
  // The comparison sees masks: other keys give another gradient.
  BOOST_TEST(relative_gap(one_graph_gradient(dir, 0.1, 2, 6), one_graph_gradient(dir, 0.1, 2, 5)) > 1e-3);
}

BOOST_AUTO_TEST_SUITE_END()
