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

BOOST_AUTO_TEST_CASE(odd_dimension_and_bad_names_are_errors) {
  at::Tensor e = at::ones({4, 3}, at::kDouble);
  BOOST_CHECK_THROW(loss::angle_loss(at::zeros({2}, at::kDouble), e, 20), std::exception);
  BOOST_CHECK_THROW(loss::Weights::preset("v9"), std::exception);
  BOOST_CHECK_THROW(loss::parse_label_mode("int"), std::exception);
}

BOOST_AUTO_TEST_SUITE_END()
