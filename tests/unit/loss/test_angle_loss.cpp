// Each AnglE loss term on a tiny batch whose value is worked out by hand (in the comments).
// Parity with angle-emb on random batches is tests/oracle/test_loss_reference.cpp.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "loss/angle_loss.h"

using namespace angle;
namespace tt = boost::test_tools;

namespace {
at::Tensor rows(std::vector<double> values, int64_t dim) {
  return at::tensor(values, at::kDouble).view({-1, dim});
}
double value(const at::Tensor& t) { return t.item<double>(); }
}  // namespace

BOOST_AUTO_TEST_SUITE(angle_loss)

BOOST_AUTO_TEST_CASE(cosine_loss_closed_form) {
  // pair 0: orthogonal (cos 0), pair 1: identical (cos 1); τ = 20.
  at::Tensor e = rows({1, 0, 0, 1, 1, 0, 1, 0}, 2);
  // y0 < y1: only (i=0, j=1) counts: log(1 + exp(20·0 − 20·1)).
  // (logsumexp computes log(1 + 2e-9) in double: compare absolutely.)
  BOOST_TEST(std::abs(value(loss::cosine_loss(at::tensor({0.0, 1.0}, at::kDouble), e, 20)) - std::exp(-20.0)) < 1e-15);
  // Reversed labels: the wrong order costs log(1 + e^20).
  BOOST_TEST(value(loss::cosine_loss(at::tensor({1.0, 0.0}, at::kDouble), e, 20)) == std::log1p(std::exp(20.0)),
             tt::tolerance(1e-12));
  // Ties never count: log(1) = 0. Only the order matters, not the scale.
  BOOST_TEST(value(loss::cosine_loss(at::tensor({3.0, 3.0}, at::kDouble), e, 20)) == 0.0, tt::tolerance(1e-12));
  BOOST_TEST(std::abs(value(loss::cosine_loss(at::tensor({0.0, 5.0}, at::kDouble), e, 20)) - std::exp(-20.0)) < 1e-15);
}

BOOST_AUTO_TEST_CASE(in_batch_negative_closed_form) {
  // rows: e0 = e1 (pair 0, label 1), e2 ⟂ e3 ⟂ e0 (pair 1, label 0); τ = 1.
  at::Tensor e = rows({1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, 4);
  // Row 0: logits [masked, 1, 0, 0], target row 1: −log(e/(e+2)) = log(1 + 2/e); row 1 alike.
  // Rows 2, 3 have label 0: no target, but they count in the mean over 4 rows.
  double expected = 2 * std::log1p(2 / std::exp(1.0)) / 4;
  BOOST_TEST(value(loss::in_batch_negative_loss(at::tensor({1.0, 0.0}, at::kDouble), e, 1)) == expected,
             tt::tolerance(1e-12));
  // A graded label below 1 truncates to 0: no positives at all.
  BOOST_TEST(value(loss::in_batch_negative_loss(at::tensor({0.9, 0.0}, at::kDouble), e, 1)) == 0.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(angle_loss_closed_form) {
  // D = 2: u = 1 + 0i, v = 0 + 1i → quotient re 0, im −1 → |S| = 1 (90° apart).
  // pair 1: u = v = 1 + 0i → re 1, im 0 → |S| = 1. Equal scores: log(1 + e^0) = log 2 whatever τ,
  // although their cosines (0 and 1) differ.
  at::Tensor e = rows({1, 0, 0, 1, 1, 0, 1, 0}, 2);
  BOOST_TEST(value(loss::angle_loss(at::tensor({0.0, 1.0}, at::kDouble), e, 20)) == std::log(2.0), tt::tolerance(1e-12));
  // mean reduction divides S by D = 2 (still equal scores).
  BOOST_TEST(value(loss::angle_loss(at::tensor({0.0, 1.0}, at::kDouble), e, 20, true)) == std::log(2.0),
             tt::tolerance(1e-12));
  // u = 1 + 1i, v = 1 + 0i: re = 1/√2, im = 1/√2 → S = √2; pair 1 as above (S = 1). τ = 1, y0 > y1:
  // log(1 + exp(1 − √2)).
  at::Tensor f = rows({1, 1, 1, 0, 1, 0, 1, 0}, 2);
  BOOST_TEST(value(loss::angle_loss(at::tensor({1.0, 0.0}, at::kDouble), f, 1)) == std::log1p(std::exp(1 - std::sqrt(2.0))),
             tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(contrastive_closed_form) {
  at::Tensor q = rows({1, 0, 0, 1}, 2), p = rows({1, 0, 0, 1}, 2), n = rows({0, 1, 1, 0}, 2);
  // Scores [[1,0],[0,1]] (τ = 1): each query −log(e/(e+1)).
  BOOST_TEST(value(loss::contrastive_loss(q, p, at::Tensor(), 1)) == std::log1p(1 / std::exp(1.0)), tt::tolerance(1e-12));
  // With hard negatives: row 0 scores [1,0,0,1] → −log(e/(2e+2)) = log(2(1 + 1/e)); row 1 alike.
  BOOST_TEST(value(loss::contrastive_loss(q, p, n, 1)) == std::log(2 * (1 + 1 / std::exp(1.0))), tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(objective_combines_terms_per_format) {
  at::Tensor e = rows({1, 0, 0, 1, 1, 0, 1, 0}, 2), y = at::tensor({0.0, 1.0}, at::kDouble);
  loss::Weights w;
  w.cosine_w = 2, w.ibn_w = 0, w.angle_w = 0.5, w.cosine_tau = 20, w.angle_tau = 20;
  auto v = loss::angle_objective(loss::Format::A, w, y, e);
  BOOST_TEST(value(v.total) == 2 * std::exp(-20.0) + 0.5 * std::log(2.0), tt::tolerance(1e-12));
  BOOST_TEST(v.terms.count("ibn") == 0u);  // a zero weight skips the term
  // Format B ignores all weights: plain InfoNCE.
  at::Tensor qp = rows({1, 0, 1, 0, 0, 1, 0, 1}, 2);
  w.ibn_tau = 1;
  BOOST_TEST(value(loss::angle_objective(loss::Format::B, w, at::Tensor(), qp).total) == std::log1p(1 / std::exp(1.0)),
             tt::tolerance(1e-12));
  // legacy-int truncates labels for every term: 0.2 vs 0.7 become a tie, so both ranking terms vanish.
  w.label_mode = loss::LabelMode::legacy_int;
  BOOST_TEST(value(loss::angle_objective(loss::Format::A, w, at::tensor({0.2, 0.7}, at::kDouble), e).total) == 0.0,
             tt::tolerance(1e-12));
  w.label_mode = loss::LabelMode::float_labels;
  BOOST_TEST(value(loss::angle_objective(loss::Format::A, w, at::tensor({0.2, 0.7}, at::kDouble), e).total) > 0.3);
}

// Copies example k of a batch (rows_per_example rows each) counts[k] times.
at::Tensor repeat_examples(const at::Tensor& x, int64_t rows_per_example, const std::vector<int64_t>& counts) {
  std::vector<at::Tensor> parts;
  for (size_t k = 0; k < counts.size(); ++k)
    for (int64_t c = 0; c < counts[k]; ++c) parts.push_back(x.narrow(0, int64_t(k) * rows_per_example, rows_per_example));
  return at::cat(parts);
}

// Weight w on an example equals w copies of it: loss value, and the gradient of each example's rows
// equals the sum over its copies. Every format; format A without the in-batch term (whose
// index-based targets copies would change).
BOOST_AUTO_TEST_CASE(integer_weights_equal_copies) {
  at::manual_seed(3);
  const std::vector<int64_t> counts = {1, 3, 2, 1, 4};
  const int64_t batch = counts.size();
  at::Tensor weights = at::tensor(counts, at::kLong).to(at::kDouble);
  at::Tensor labels = at::tensor({0.5, 2.0, 1.0, 2.0, 4.0}, at::kDouble);
  loss::Weights w = loss::Weights::preset("current");
  w.cosine_w = 1, w.angle_w = 0.5, w.ibn_w = 0.7, w.cln_w = 1.3;
  for (auto format : {loss::Format::A, loss::Format::B, loss::Format::C}) {
    loss::Weights fw = w;
    if (format == loss::Format::A) fw.ibn_w = 0;
    const int64_t k = loss::rows_per_example(format);
    at::Tensor e = at::randn({batch * k, 8}, at::kDouble).requires_grad_(true);
    auto weighted = loss::angle_objective(format, fw, labels, e, weights);
    weighted.total.backward();
    at::Tensor copies_leaf = e.detach().clone().requires_grad_(true);
    at::Tensor copied = repeat_examples(copies_leaf, k, counts);
    auto reference = loss::angle_objective(format, fw, repeat_examples(labels.unsqueeze(1), 1, counts).squeeze(1), copied);
    reference.total.backward();
    BOOST_TEST(value(weighted.total) == value(reference.total), tt::tolerance(1e-10));
    BOOST_TEST((e.grad() - copies_leaf.grad()).abs().max().item<double>() <= 1e-10);
  }
}

// Weight 0 removes an example exactly: the loss of the others alone, and no gradient on its rows.
// Every format and term (0/1 labels, so that the in-batch targets do not depend on positions).
BOOST_AUTO_TEST_CASE(zero_weight_removes_an_example) {
  at::manual_seed(4);
  loss::Weights w = loss::Weights::preset("current");
  w.cosine_w = 1, w.angle_w = 0.5;
  // Example 1 is removed: once a positive (label 1, an in-batch target), once a negative.
  for (double removed_label : {1.0, 0.0}) {
    at::Tensor labels = at::tensor({1.0, removed_label, 0.0, 1.0}, at::kDouble);
    for (auto format : {loss::Format::A, loss::Format::B, loss::Format::C}) {
      const int64_t k = loss::rows_per_example(format);
      at::Tensor e = at::randn({4 * k, 8}, at::kDouble).requires_grad_(true);
      auto weighted = loss::angle_objective(format, w, labels, e, at::tensor({1.0, 0.0, 1.0, 1.0}, at::kDouble));
      weighted.total.backward();
      at::Tensor kept = at::cat({e.detach().narrow(0, 0, k), e.detach().narrow(0, 2 * k, 2 * k)});
      auto reference = loss::angle_objective(format, w, at::tensor({1.0, 0.0, 1.0}, at::kDouble), kept);
      BOOST_TEST(value(weighted.total) == value(reference.total), tt::tolerance(1e-10));
      BOOST_TEST(e.grad().narrow(0, k, k).abs().max().item<double>() == 0.0);
    }
  }
  at::Tensor labels = at::tensor({1.0, 0.0, 1.0, 1.0}, at::kDouble);
  // Every weight 0: nothing to learn from, a loss of exactly 0.
  at::Tensor e = at::randn({8, 8}, at::kDouble);
  BOOST_TEST(value(loss::angle_objective(loss::Format::A, w, labels, e, at::zeros({4}, at::kDouble)).total) == 0.0);
}

BOOST_AUTO_TEST_CASE(weighted_in_batch_negative_closed_form) {
  // The rows of in_batch_negative_closed_form, pair 0 weighted 2 and pair 1 weighted 1 (τ = 1).
  at::Tensor e = rows({1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, 4);
  // Row 0: logits [masked, 1, 0, 0], candidate weights [2, 2, 1, 1]: ℓ = −1 + log(2e + 2); row 1
  // alike; rows 2, 3 have no target. L = (2ℓ + 2ℓ + 0 + 0) / (2 + 2 + 1 + 1).
  const double l = -1 + std::log(2 * std::exp(1.0) + 2);
  BOOST_TEST(value(loss::in_batch_negative_loss(at::tensor({1.0, 0.0}, at::kDouble), e, 1,
                                                at::tensor({2.0, 1.0}, at::kDouble))) == 4 * l / 6,
             tt::tolerance(1e-12));
  // Contrastive: q = p = the unit vectors, weights [0.5, 1] (τ = 1): ℓ0 = −1 + log(0.5e + 1),
  // ℓ1 = −1 + log(0.5 + e); L = (0.5ℓ0 + ℓ1) / 1.5.
  at::Tensor q = rows({1, 0, 0, 1}, 2);
  const double l0 = -1 + std::log(0.5 * std::exp(1.0) + 1), l1 = -1 + std::log(0.5 + std::exp(1.0));
  BOOST_TEST(value(loss::contrastive_loss(q, q, at::Tensor(), 1, at::tensor({0.5, 1.0}, at::kDouble))) ==
                 (0.5 * l0 + l1) / 1.5,
             tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(odd_dimension_and_bad_names_are_errors) {
  at::Tensor e = at::ones({4, 3}, at::kDouble);
  BOOST_CHECK_THROW(loss::angle_loss(at::zeros({2}, at::kDouble), e, 20), std::exception);
  BOOST_CHECK_THROW(loss::Weights::preset("v9"), std::exception);
  BOOST_CHECK_THROW(loss::parse_label_mode("int"), std::exception);
}

BOOST_AUTO_TEST_SUITE_END()
