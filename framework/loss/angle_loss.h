// The AnglE objective (reference: angle-emb v0.6.1, ../shared/reference/angle-reference.md §1).
// Every function is differentiable LibTorch code over pooled embeddings, dtype-generic (fp32 in
// training, fp64 in the golden tests). τ is a multiplicative scale. "Masked" logits get −1e12
// added, exactly as the reference does, never −inf.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace angle::loss {

// Format A rows are "zigzag": row 2i = text1 of pair i, row 2i+1 = text2. `labels` is [B].
//
// Per-example weights (`weights`, [B], >= 0; undefined = the reference's unweighted loss) act as
// example multiplicities, so that weight w on an example equals w copies of it and weight 0 removes
// it exactly (as a query, as a target and as anyone's negative):
// - ranking terms (CoSENT, angle): log(1 + Σ_{y_i<y_j} w_i w_j exp(s_i − s_j)) — a pair of examples
//   counts w_i·w_j times, which is what copying both gives;
// - contrastive (formats B/C): ℓ_i = −s_ii + log Σ_j w_j exp(s_ij) over the candidates (a hard
//   negative carries its example's weight), L = Σ w_i ℓ_i / Σ w_i — again exactly the copies;
// - in-batch negatives (format A): candidates weighted as above inside the softmax, rows averaged
//   with their example's weight, L = Σ_k w_k ℓ_k / Σ_k w_k. Here copies are not the same thing (a
//   text's own copies would become its candidates, and labels above 1 add index-rule targets):
//   this form is the definition, and weight 0 still removes an example exactly.
// All weights 1 gives the reference's values. Every sum of weights that is 0 gives a loss of 0.

// CoSENT: log(1 + Σ_{y_i<y_j} exp(τ cos_i − τ cos_j)).
at::Tensor cosine_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau,
                       const at::Tensor& weights = {});
// In-batch negatives over all 2B texts; targets from int(label) as the reference builds them
// (m is a target of k iff y_k≠0, y_m≠0 and m·y_m = partner(k)·y_k); mean over all 2B rows.
at::Tensor in_batch_negative_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau,
                                  const at::Tensor& weights = {});
// Angle difference in complex space (first half real, second half imaginary), global norms,
// reduced by sum (default) or mean, ranked like CoSENT.
at::Tensor angle_loss(const at::Tensor& labels, const at::Tensor& embeddings, double tau, bool mean_reduction = false,
                      const at::Tensor& weights = {});
// One-way InfoNCE of each query against all positives (and hard negatives when defined).
// `not_negative` [queries, candidates] (bool, optional): candidates a query does not count at all
// (false negatives, below), masked like the reference's masks (−1e12).
at::Tensor contrastive_loss(const at::Tensor& query, const at::Tensor& positive, const at::Tensor& negative,
                            double tau, const at::Tensor& weights = {}, const at::Tensor& not_negative = {});

enum class Format { A, B, C };  // (text1,text2,label) / (query,positive) / (query,positive,negative)
enum class LabelMode { float_labels, legacy_int };

// False negatives among a query's candidates (Qwen3-Embedding's mask; loss.false_negatives): a
// candidate other than the query's own positive stops being a negative when its text is the
// positive's (text: equal token ids, e.g. the same passage as another query's positive) or when its
// cosine with the query exceeds the positive's by more than a margin (margin). The example itself
// stays: only that one candidate leaves that one query's softmax.
enum class FalseNegatives { none, margin, text };
// [queries, candidates] bool: `cosines` are the queries' cosines with the candidates, the first
// `queries` columns their positives in order; `positive_texts` [queries] and `candidate_texts`
// [candidates] identify texts (hashes of token ids; text mode only).
at::Tensor false_negative_mask(FalseNegatives mode, double margin, const at::Tensor& cosines,
                               const at::Tensor& positive_texts, const at::Tensor& candidate_texts);

struct Weights {
  double cosine_w = 0.0, ibn_w = 1.0, cln_w = 1.0, angle_w = 0.02;
  double cosine_tau = 20.0, ibn_tau = 20.0, angle_tau = 20.0;
  bool angle_mean = false;  // angle_pooling_strategy 'mean' instead of 'sum'
  LabelMode label_mode = LabelMode::float_labels;
  FalseNegatives false_negatives = FalseNegatives::none;  // formats B and C: the contrastive terms
  double false_negative_margin = 0.1;                     // cosine (Qwen3-Embedding's 0.1)

  // "current" (v0.5.5–v0.6.1), "v0.4.6-cli", "paper" (w1=1, w2=35, w3=1, angle τ=1).
  static Weights preset(const std::string& name);
};

Format parse_format(const std::string& name);
LabelMode parse_label_mode(const std::string& name);  // "float" | "legacy-int"

struct LossValue {
  at::Tensor total;                          // scalar, differentiable
  std::map<std::string, double> terms;       // each computed term (unweighted), for metrics
};

// The combination of AngleLoss.__call__ for each format (§1.5). `embeddings` holds the rows in
// the format's interleaved order ([q,p] or [q,p,n] per example); `labels` is [B] (format A only);
// `weights` [B] are the per-example weights described above (undefined: unweighted); `row_texts`
// [rows] int64 identify each row's text (w.false_negatives = text).
LossValue angle_objective(Format format, const Weights& w, const at::Tensor& labels, const at::Tensor& embeddings,
                          const at::Tensor& weights = {}, const at::Tensor& row_texts = {});
// Rows per example of a format: 2 (A, B) or 3 (C).
int64_t rows_per_example(Format format);

}  // namespace angle::loss
