// False-negative masking (loss.false_negatives) against a second code path: each query's
// cross-entropy summed by hand over the candidates the rule keeps, rules applied in loops.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "loss/angle_loss.h"

using namespace angle;

namespace {

at::Tensor unit_rows(const at::Tensor& x) { return x / x.norm(2, 1, true); }

// Mean over queries of −τ s_ii + log Σ_{j kept} exp(τ s_ij), the candidates j that `masked(i, j)`
// leaves out skipped one by one.
template <typename Masked>
at::Tensor by_hand(const at::Tensor& q, const at::Tensor& candidates, double tau, Masked masked) {
  at::Tensor s = at::matmul(unit_rows(q), unit_rows(candidates).t()) * tau;
  at::Tensor total = at::zeros({}, q.options());
  for (int64_t i = 0; i < q.size(0); ++i) {
    std::vector<at::Tensor> kept;
    for (int64_t j = 0; j < candidates.size(0); ++j)
      if (!masked(i, j)) kept.push_back(s[i][j]);
    total = total - s[i][i] + at::logsumexp(at::stack(kept), 0);
  }
  return total / q.size(0);
}

loss::Weights contrastive_only(loss::FalseNegatives rule) {
  loss::Weights w;
  w.cosine_w = 0, w.angle_w = 0, w.ibn_w = 0, w.cln_w = 2;  // format C: the hard-negative term alone, (cln_w / 2) · cln
  w.false_negatives = rule;
  return w;
}

// [rows, D] interleaved from [B, D] columns.
at::Tensor interleave(std::vector<at::Tensor> columns) { return at::stack(columns, 1).flatten(0, 1); }

}  // namespace

BOOST_AUTO_TEST_SUITE(false_negatives)

BOOST_AUTO_TEST_CASE(text_rule_drops_a_duplicate_positive_from_other_queries_only) {
  at::manual_seed(7);
  at::Tensor q = at::randn({4, 6}, at::kDouble), p = at::randn({4, 6}, at::kDouble);
  p[3] = p[1];  // examples 1 and 3 share their positive's text
  at::Tensor texts = at::tensor(std::vector<int64_t>{100, 10, 101, 11, 102, 12, 103, 11}, at::kLong);  // q, p, q, p, ...
  at::Tensor e = interleave({q, p}).requires_grad_(true);
  loss::Weights w = contrastive_only(loss::FalseNegatives::text);
  at::Tensor ours = loss::angle_objective(loss::Format::B, w, at::zeros({4}, at::kDouble), e, {}, texts).total;
  at::Tensor qq = q.clone().requires_grad_(true), pp = p.clone().requires_grad_(true);
  at::Tensor expected = by_hand(qq, pp, w.ibn_tau, [](int64_t i, int64_t j) { return (i == 1 && j == 3) || (i == 3 && j == 1); });
  BOOST_TEST(std::abs(ours.item<double>() - expected.item<double>()) < 1e-12);
  ours.backward(), expected.backward();
  at::Tensor grad = e.grad().view({4, 2, 6});
  BOOST_TEST(at::allclose(grad.select(1, 0), qq.grad(), 1e-12, 1e-12));
  BOOST_TEST(at::allclose(grad.select(1, 1), pp.grad(), 1e-12, 1e-12));
  // Without the rule the duplicate counts as a negative (twice: it is the same vector).
  at::Tensor plain = loss::angle_objective(loss::Format::B, contrastive_only(loss::FalseNegatives::none),
                                           at::zeros({4}, at::kDouble), e.detach()).total;
  BOOST_TEST(plain.item<double>() > ours.item<double>() + 1e-3);
}

BOOST_AUTO_TEST_CASE(text_rule_covers_hard_negatives_in_format_c) {
  at::manual_seed(8);
  at::Tensor q = at::randn({3, 4}, at::kDouble), p = at::randn({3, 4}, at::kDouble), n = at::randn({3, 4}, at::kDouble);
  n[0] = p[2];  // example 0's hard negative is example 2's positive
  at::Tensor texts = at::tensor(std::vector<int64_t>{1, 20, 30, 2, 21, 31, 3, 22, 20 + 2}, at::kLong);
  texts[2] = 22;  // n_0's text = p_2's
  at::Tensor e = interleave({q, p, n});
  loss::Weights w = contrastive_only(loss::FalseNegatives::text);
  const double ours = loss::angle_objective(loss::Format::C, w, at::zeros({3}, at::kDouble), e, {}, texts).total.item<double>();
  // candidates: p0 p1 p2 n0 n1 n2; query 2 drops n0 (column 3); query 0 keeps n0, its own negative
  // whose text is not its positive's. n2 (text 22 too) is p2's text: query 2 drops it as well.
  const double expected = by_hand(q, at::cat({p, n}), w.ibn_tau, [](int64_t i, int64_t j) {
                            return i == 2 && (j == 3 || j == 5);
                          }).item<double>();
  BOOST_TEST(std::abs(ours - expected) < 1e-12);
}

BOOST_AUTO_TEST_CASE(margin_rule_drops_candidates_scoring_above_the_positive) {
  at::manual_seed(9);
  at::Tensor q = at::randn({5, 3}, at::kDouble), p = at::randn({5, 3}, at::kDouble);
  loss::Weights w = contrastive_only(loss::FalseNegatives::margin);
  w.false_negative_margin = 0.05;
  at::Tensor cos = at::matmul(unit_rows(q), unit_rows(p).t());
  auto masked = [&](int64_t i, int64_t j) {
    return i != j && cos[i][j].item<double>() > cos[i][i].item<double>() + 0.05;
  };
  int64_t count = 0;
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 5; ++j) count += masked(i, j);
  BOOST_TEST_REQUIRE(count > 0);  // the case exercises the rule (seed 9: random vectors in 3-d)
  at::Tensor mask = loss::false_negative_mask(loss::FalseNegatives::margin, 0.05, cos, {}, {});
  BOOST_TEST(mask.sum().item<int64_t>() == count);
  const double ours =
      loss::angle_objective(loss::Format::B, w, at::zeros({5}, at::kDouble), interleave({q, p})).total.item<double>();
  BOOST_TEST(std::abs(ours - by_hand(q, p, w.ibn_tau, masked).item<double>()) < 1e-12);
}

BOOST_AUTO_TEST_SUITE_END()
