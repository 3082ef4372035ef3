#include "loss/angle_loss.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace angle::loss {
namespace {

constexpr double kMask = 1e12;  // the reference's additive mask

at::Tensor normalize_rows(const at::Tensor& x) { return x / x.norm(2, 1, true).clamp_min(1e-12); }

// log w, with the reference's additive mask for w = 0 (exp of it is exactly 0).
at::Tensor log_weights(const at::Tensor& weights, const at::TensorOptions& options) {
  at::Tensor w = weights.to(options.dtype());
  return at::where(w > 0, w.log(), at::full({}, -kMask, options));
}

// Σ w_k ℓ_k / Σ w_k (0 when every weight is 0), or the plain mean without weights.
at::Tensor weighted_mean(const at::Tensor& values, const at::Tensor& weights) {
  if (!weights.defined()) return values.mean();
  at::Tensor w = weights.to(values.scalar_type());
  return (w * values).sum() / w.sum().clamp_min(1e-30);
}

// log(1 + Σ_{y_i<y_j} w_i w_j exp(s_i − s_j)) without the B x B matrix of differences (which is
// what the reference builds, and 1 GiB per copy at 16k pairs): with a_i = w_i exp(s_i − M) and
// b_j = w_j exp(m − s_j) (M, m the largest and smallest score, constants: the value does not
// depend on them), the sum is exp(M − m) Σ_j b_j P(y_j), where P(y) = Σ_{i: y_i < y} a_i is a
// prefix sum over the labels in ascending order, ties excluded. O(B log B) time and O(B) memory,
// in float64 (exp(M − m) stays finite for any τ·|score| below ~350).
at::Tensor ranking_loss(const at::Tensor& labels, const at::Tensor& scores, const at::Tensor& weights) {
  at::Tensor s = scores.to(at::kDouble);
  const at::Tensor high = s.max().detach(), low = s.min().detach();
  at::Tensor a = (s - high).exp(), b = (low - s).exp();
  if (weights.defined()) {
    at::Tensor w = weights.to(at::kDouble);
    a = a * w, b = b * w;
  }
  auto [sorted_labels, order] = labels.to(at::kDouble).sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  a = a.index_select(0, order), b = b.index_select(0, order);
  at::Tensor before = at::cat({at::zeros({1}, a.options()), a.cumsum(0)});  // before[t] = Σ_{i<t} a_i
  at::Tensor first = at::searchsorted(sorted_labels, sorted_labels);       // first index of each label
  at::Tensor total = (b * before.index_select(0, first)).sum();
  return at::log1p((high - low).exp() * total).to(scores.scalar_type());
}

// −s_target + log Σ_j w_j exp(s_j) per row: the cross-entropy with weighted candidates.
at::Tensor weighted_cross_entropy(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& candidate_weights) {
  at::Tensor shifted = logits + log_weights(candidate_weights, logits.options()).unsqueeze(0);
  return at::logsumexp(shifted, 1) - logits.gather(1, targets.unsqueeze(1)).squeeze(1);
}

at::Tensor even_rows(const at::Tensor& x) { return x.slice(0, 0, x.size(0), 2); }
at::Tensor odd_rows(const at::Tensor& x) { return x.slice(0, 1, x.size(0), 2); }

// The false-negative mask of queries q against positives p (and negatives n when defined), or
// undefined when w asks for none.
at::Tensor not_negative(const Weights& w, const at::Tensor& q, const at::Tensor& p, const at::Tensor& n,
                        const at::Tensor& p_texts, const at::Tensor& n_texts) {
  if (w.false_negatives == FalseNegatives::none) return {};
  at::Tensor candidates = n.defined() ? at::cat({p, n}, 0) : p;
  at::Tensor cosines = at::matmul(normalize_rows(q), normalize_rows(candidates).t());
  at::Tensor texts = n.defined() && p_texts.defined() ? at::cat({p_texts, n_texts}) : p_texts;
  return false_negative_mask(w.false_negatives, w.false_negative_margin, cosines, p_texts, texts);
}

void check_pairs(const at::Tensor& labels, const at::Tensor& embeddings) {
  ANGLE_CHECK(embeddings.dim() == 2 && embeddings.size(0) == 2 * labels.size(0), "loss: expected ", 2 * labels.size(0),
              " zigzag rows for ", labels.size(0), " labels, got ", embeddings.sizes());
}

}  // namespace

at::Tensor cosine_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau, const at::Tensor& weights) {
  check_pairs(labels, embeddings);
  at::Tensor e = normalize_rows(embeddings);
  at::Tensor scores = (even_rows(e) * odd_rows(e)).sum(1) * tau;
  return ranking_loss(labels, scores, weights);
}

at::Tensor angle_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau, bool mean_reduction,
                      const at::Tensor& weights) {
  check_pairs(labels, embeddings);
  ANGLE_CHECK(embeddings.size(1) % 2 == 0, "angle loss needs an even embedding size, got ", embeddings.size(1));
  const int64_t half = embeddings.size(1) / 2;
  at::Tensor re = embeddings.narrow(1, 0, half), im = embeddings.narrow(1, half, half);
  at::Tensor a = even_rows(re), b = even_rows(im), c = odd_rows(re), d = odd_rows(im);
  // (a+bi)/(c+di) with one denominator for the whole vector, then scaled by |v|/|u|:
  // every component ends up divided by |u||v|.
  at::Tensor z = (c * c + d * d).sum(1, true);
  at::Tensor dz = (a * a + b * b).sum(1, true).pow(0.5), dw = z.pow(0.5);
  at::Tensor real = (a * c + b * d) / z / (dz / dw);
  at::Tensor imag = (b * c - a * d) / z / (dz / dw);
  at::Tensor pooled = at::cat({real, imag}, 1);
  pooled = mean_reduction ? pooled.mean(1) : pooled.sum(1);
  return ranking_loss(labels, pooled.abs() * tau, weights);
}

at::Tensor in_batch_negative_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau,
                                  const at::Tensor& weights) {
  check_pairs(labels, embeddings);
  const int64_t n = embeddings.size(0);
  at::Tensor y = labels.repeat_interleave(2).to(at::kLong);  // int(): truncation toward zero
  at::Tensor idx = at::arange(n, y.options());
  at::Tensor partner = idx + 1 - (idx % 2) * 2;
  at::Tensor column_key = idx * y + (y == 0).to(at::kLong) * -2;    // m·y_m, or −2
  at::Tensor row_key = partner * y + (y == 0).to(at::kLong) * -1;   // p(k)·y_k, or −1
  at::Tensor targets = (column_key.unsqueeze(0) == row_key.unsqueeze(1)).to(embeddings.scalar_type());
  at::Tensor e = normalize_rows(embeddings);
  at::Tensor logits = (at::matmul(e, e.t()) - at::eye(n, embeddings.options()) * kMask) * tau;
  if (!weights.defined()) return (-(at::log_softmax(logits, 1) * targets).sum(1)).mean();
  at::Tensor w = weights.repeat_interleave(2).to(embeddings.scalar_type());
  targets = targets * (w > 0).to(targets.scalar_type()).unsqueeze(0);  // a removed text is nobody's target
  at::Tensor log_p = logits - at::logsumexp(logits + log_weights(w, logits.options()).unsqueeze(0), 1, true);
  return weighted_mean(-(log_p * targets).sum(1), w);
}

at::Tensor contrastive_loss(const at::Tensor& query, const at::Tensor& positive, const at::Tensor& negative,
                            double tau, const at::Tensor& weights, const at::Tensor& not_negative) {
  at::Tensor candidates = negative.defined() ? at::cat({positive, negative}, 0) : positive;
  at::Tensor scores = at::matmul(normalize_rows(query), normalize_rows(candidates).t()) * tau;
  if (not_negative.defined()) scores = scores - not_negative.to(scores.scalar_type()) * kMask;
  at::Tensor targets = at::arange(query.size(0), query.options().dtype(at::kLong));
  if (!weights.defined()) return at::cross_entropy_loss(scores, targets);
  at::Tensor candidate_weights = negative.defined() ? at::cat({weights, weights}) : weights;
  return weighted_mean(weighted_cross_entropy(scores, targets, candidate_weights), weights);
}

at::Tensor false_negative_mask(FalseNegatives mode, double margin, const at::Tensor& cosines,
                               const at::Tensor& positive_texts, const at::Tensor& candidate_texts) {
  const int64_t queries = cosines.size(0), candidates = cosines.size(1);
  at::Tensor own = at::eye(queries, candidates, cosines.options().dtype(at::kBool));
  at::Tensor mask;
  if (mode == FalseNegatives::text) {
    ANGLE_CHECK(positive_texts.defined() && positive_texts.size(0) == queries && candidate_texts.defined() &&
                    candidate_texts.size(0) == candidates,
                "false negatives by text: expected ", queries, " positive and ", candidates, " candidate texts");
    mask = positive_texts.unsqueeze(1) == candidate_texts.unsqueeze(0);
  } else {
    at::Tensor s = cosines.detach();
    mask = s > (s.diagonal().unsqueeze(1) + margin);
  }
  return mask & own.logical_not();
}

Weights Weights::preset(const std::string& name) {
  Weights w;
  if (name == "current") return w;
  if (name == "v0.4.6-cli") {
    w.cosine_w = 0.0, w.ibn_w = 30.0, w.cln_w = 0.0, w.angle_w = 1.0;
    return w;
  }
  if (name == "paper") {
    w.cosine_w = 1.0, w.ibn_w = 35.0, w.cln_w = 0.0, w.angle_w = 1.0, w.angle_tau = 1.0;
    return w;
  }
  ANGLE_FAIL("unknown loss preset '", name, "' (current, v0.4.6-cli, paper)");
}

Format parse_format(const std::string& name) {
  if (name == "A") return Format::A;
  if (name == "B") return Format::B;
  if (name == "C") return Format::C;
  ANGLE_FAIL("unknown data format '", name, "' (A: text1,text2,label; B: query,positive; C: query,positive,negative)");
}

LabelMode parse_label_mode(const std::string& name) {
  if (name == "float") return LabelMode::float_labels;
  if (name == "legacy-int") return LabelMode::legacy_int;
  ANGLE_FAIL("unknown label mode '", name, "' (float, legacy-int)");
}

int64_t rows_per_example(Format format) { return format == Format::C ? 3 : 2; }

LossValue angle_objective(Format format, const Weights& w, const at::Tensor& labels, const at::Tensor& embeddings,
                          const at::Tensor& weights, const at::Tensor& row_texts) {
  ANGLE_CHECK(!weights.defined() || weights.size(0) * rows_per_example(format) == embeddings.size(0), "loss: ",
              weights.size(0), " example weights for ", embeddings.size(0), " rows of format ",
              format == Format::A ? "A" : format == Format::B ? "B" : "C");
  LossValue out;
  at::Tensor total = at::zeros({}, embeddings.options());
  auto add = [&](const char* name, double weight, const at::Tensor& term) {
    out.terms[name] = term.item<double>();
    total = total + weight * term;
  };
  if (format == Format::A) {
    // legacy-int: ≤ v0.5.6 truncated every label with int() at tokenisation, for all terms.
    at::Tensor y = w.label_mode == LabelMode::legacy_int ? labels.trunc() : labels;
    if (w.cosine_w > 0) add("cosine", w.cosine_w, cosine_loss(y, embeddings, w.cosine_tau, weights));
    if (w.ibn_w > 0) add("ibn", w.ibn_w, in_batch_negative_loss(y, embeddings, w.ibn_tau, weights));
    if (w.angle_w > 0) add("angle", w.angle_w, angle_loss(y, embeddings, w.angle_tau, w.angle_mean, weights));
  } else if (format == Format::B) {
    // The reference ignores every weight here: plain InfoNCE with τ = ibn_tau.
    ANGLE_CHECK(embeddings.size(0) % 2 == 0, "format B needs (query, positive) rows");
    const int64_t rows = embeddings.size(0);
    at::Tensor q = even_rows(embeddings), p = odd_rows(embeddings);
    at::Tensor texts = row_texts.defined() ? row_texts.slice(0, 1, rows, 2) : row_texts;
    add("contrastive", 1.0, contrastive_loss(q, p, at::Tensor(), w.ibn_tau, weights,
                                             not_negative(w, q, p, at::Tensor(), texts, at::Tensor())));
  } else {
    ANGLE_CHECK(embeddings.size(0) % 3 == 0, "format C needs (query, positive, negative) rows");
    const int64_t rows = embeddings.size(0);
    at::Tensor q = embeddings.slice(0, 0, rows, 3), p = embeddings.slice(0, 1, rows, 3),
               n = embeddings.slice(0, 2, rows, 3);
    at::Tensor p_texts = row_texts.defined() ? row_texts.slice(0, 1, rows, 3) : row_texts;
    at::Tensor n_texts = row_texts.defined() ? row_texts.slice(0, 2, rows, 3) : row_texts;
    at::Tensor contrastive = at::zeros({}, embeddings.options());
    if (w.ibn_w > 0) {
      at::Tensor term =
          contrastive_loss(q, p, at::Tensor(), w.ibn_tau, weights, not_negative(w, q, p, at::Tensor(), p_texts, n_texts));
      out.terms["ibn"] = term.item<double>();
      contrastive = contrastive + w.ibn_w * term;
    }
    if (w.cln_w > 0) {
      at::Tensor term = contrastive_loss(q, p, n, w.ibn_tau, weights, not_negative(w, q, p, n, p_texts, n_texts));
      out.terms["cln"] = term.item<double>();
      contrastive = contrastive + w.cln_w * term;
    }
    // The reference adds X/2 only when X > 0; weighted, X may be negative (a weight below 1 shrinks
    // the target's own share of the softmax too), and is added as it is.
    if (weights.defined() || contrastive.item<double>() > 0) total = total + contrastive / 2;
    // Pseudo-pairs (q_i, p_i) labelled 1 and (q_i, n_i) labelled 0, zigzag.
    at::Tensor pairs = at::cat({at::stack({q, p}, 1).flatten(0, 1), at::stack({q, n}, 1).flatten(0, 1)}, 0);
    const int64_t b = q.size(0);
    at::Tensor y = at::cat({at::ones({b}, embeddings.options()), at::zeros({b}, embeddings.options())});
    at::Tensor pair_weights = weights.defined() ? at::cat({weights, weights}) : weights;
    if (w.angle_w > 0) add("angle", w.angle_w, angle_loss(y, pairs, w.angle_tau, w.angle_mean, pair_weights));
    if (w.cosine_w > 0) add("cosine", w.cosine_w, cosine_loss(y, pairs, w.cosine_tau, pair_weights));
  }
  out.total = total;
  return out;
}

}  // namespace angle::loss
