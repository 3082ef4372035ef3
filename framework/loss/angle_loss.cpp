#include "loss/angle_loss.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace angle::loss {
namespace {

constexpr double kMask = 1e12;  // the reference's additive mask

at::Tensor normalize_rows(const at::Tensor& x) { return x / x.norm(2, 1, true).clamp_min(1e-12); }

// log(1 + Σ_{y_i<y_j} exp(s_i − s_j)): logsumexp over a 0 logit and the masked differences.
at::Tensor ranking_loss(const at::Tensor& labels, const at::Tensor& scores) {
  at::Tensor order = (labels.unsqueeze(1) < labels.unsqueeze(0)).to(scores.scalar_type());
  at::Tensor diff = (scores.unsqueeze(1) - scores.unsqueeze(0)) - (1 - order) * kMask;
  return at::logsumexp(at::cat({at::zeros({1}, scores.options()), diff.flatten()}), 0);
}

at::Tensor even_rows(const at::Tensor& x) { return x.slice(0, 0, x.size(0), 2); }
at::Tensor odd_rows(const at::Tensor& x) { return x.slice(0, 1, x.size(0), 2); }

void check_pairs(const at::Tensor& labels, const at::Tensor& embeddings) {
  ANGLE_CHECK(embeddings.dim() == 2 && embeddings.size(0) == 2 * labels.size(0), "loss: expected ", 2 * labels.size(0),
              " zigzag rows for ", labels.size(0), " labels, got ", embeddings.sizes());
}

}  // namespace

at::Tensor cosine_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau) {
  check_pairs(labels, embeddings);
  at::Tensor e = normalize_rows(embeddings);
  at::Tensor scores = (even_rows(e) * odd_rows(e)).sum(1) * tau;
  return ranking_loss(labels, scores);
}

at::Tensor angle_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau, bool mean_reduction) {
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
  return ranking_loss(labels, pooled.abs() * tau);
}

at::Tensor in_batch_negative_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau) {
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
  return (-(at::log_softmax(logits, 1) * targets).sum(1)).mean();
}

at::Tensor contrastive_loss(const at::Tensor& query, const at::Tensor& positive, const at::Tensor& negative,
                            double tau) {
  at::Tensor candidates = negative.defined() ? at::cat({positive, negative}, 0) : positive;
  at::Tensor scores = at::matmul(normalize_rows(query), normalize_rows(candidates).t()) * tau;
  return at::cross_entropy_loss(scores, at::arange(query.size(0), query.options().dtype(at::kLong)));
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

LossValue angle_objective(Format format, const Weights& w, const at::Tensor& labels, const at::Tensor& embeddings) {
  LossValue out;
  at::Tensor total = at::zeros({}, embeddings.options());
  auto add = [&](const char* name, double weight, const at::Tensor& term) {
    out.terms[name] = term.item<double>();
    total = total + weight * term;
  };
  if (format == Format::A) {
    // legacy-int: ≤ v0.5.6 truncated every label with int() at tokenisation, for all terms.
    at::Tensor y = w.label_mode == LabelMode::legacy_int ? labels.trunc() : labels;
    if (w.cosine_w > 0) add("cosine", w.cosine_w, cosine_loss(y, embeddings, w.cosine_tau));
    if (w.ibn_w > 0) add("ibn", w.ibn_w, in_batch_negative_loss(y, embeddings, w.ibn_tau));
    if (w.angle_w > 0) add("angle", w.angle_w, angle_loss(y, embeddings, w.angle_tau, w.angle_mean));
  } else if (format == Format::B) {
    // The reference ignores every weight here: plain InfoNCE with τ = ibn_tau.
    ANGLE_CHECK(embeddings.size(0) % 2 == 0, "format B needs (query, positive) rows");
    add("contrastive", 1.0, contrastive_loss(even_rows(embeddings), odd_rows(embeddings), at::Tensor(), w.ibn_tau));
  } else {
    ANGLE_CHECK(embeddings.size(0) % 3 == 0, "format C needs (query, positive, negative) rows");
    const int64_t rows = embeddings.size(0);
    at::Tensor q = embeddings.slice(0, 0, rows, 3), p = embeddings.slice(0, 1, rows, 3),
               n = embeddings.slice(0, 2, rows, 3);
    at::Tensor contrastive = at::zeros({}, embeddings.options());
    if (w.ibn_w > 0) {
      at::Tensor term = contrastive_loss(q, p, at::Tensor(), w.ibn_tau);
      out.terms["ibn"] = term.item<double>();
      contrastive = contrastive + w.ibn_w * term;
    }
    if (w.cln_w > 0) {
      at::Tensor term = contrastive_loss(q, p, n, w.ibn_tau);
      out.terms["cln"] = term.item<double>();
      contrastive = contrastive + w.cln_w * term;
    }
    if (contrastive.item<double>() > 0) total = total + contrastive / 2;
    // Pseudo-pairs (q_i, p_i) labelled 1 and (q_i, n_i) labelled 0, zigzag.
    at::Tensor pairs = at::cat({at::stack({q, p}, 1).flatten(0, 1), at::stack({q, n}, 1).flatten(0, 1)}, 0);
    const int64_t b = q.size(0);
    at::Tensor y = at::cat({at::ones({b}, embeddings.options()), at::zeros({b}, embeddings.options())});
    if (w.angle_w > 0) add("angle", w.angle_w, angle_loss(y, pairs, w.angle_tau, w.angle_mean));
    if (w.cosine_w > 0) add("cosine", w.cosine_w, cosine_loss(y, pairs, w.cosine_tau));
  }
  out.total = total;
  return out;
}

}  // namespace angle::loss
