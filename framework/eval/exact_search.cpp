#include "eval/exact_search.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

#include "comm/comm.h"
#include "core/error.h"

namespace angle::eval {
namespace {

// The first k of candidates in (score descending, index ascending) order: a stable sort by score
// of candidates in ascending index order keeps equal scores' lower index first.
TopK first_k(at::Tensor scores, at::Tensor indices, int64_t k, bool indices_ascending) {
  if (!indices_ascending) {
    at::Tensor by_index = std::get<1>(at::sort(indices, /*stable=*/true, /*dim=*/1, /*descending=*/false));
    scores = scores.gather(1, by_index), indices = indices.gather(1, by_index);
  }
  const at::Tensor by_score =
      std::get<1>(at::sort(scores, /*stable=*/true, /*dim=*/1, /*descending=*/true)).narrow(1, 0, std::min(k, scores.size(1)));
  return {scores.gather(1, by_score), indices.gather(1, by_score)};
}

// first_k of one block whose candidates are in ascending index order, without sorting the block:
// at::topk finds the k largest, and the order is exact unless a row has more than k scores at or
// above its k-th (a tie at the boundary, where topk's choice among equals is unspecified): those
// rows alone are sorted whole.
TopK block_first_k(const at::Tensor& scores, const at::Tensor& indices, int64_t k) {
  if (scores.size(1) <= k) return first_k(scores, indices, k, /*indices_ascending=*/true);
  auto [values, positions] = at::topk(scores, k, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
  TopK top = first_k(values, indices.gather(1, positions), k, /*indices_ascending=*/false);
  const at::Tensor tied = ((scores >= values.narrow(1, k - 1, 1)).sum(1) > k).nonzero().flatten();
  if (tied.numel() > 0) {
    const TopK exact = first_k(scores.index_select(0, tied), indices.index_select(0, tied), k, true);
    top.scores.index_copy_(0, tied, exact.scores);
    top.indices.index_copy_(0, tied, exact.indices);
  }
  return top;
}

}  // namespace

at::Tensor unit_rows(const at::Tensor& x) { return x / x.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12); }

TopK exact_top_k(const at::Tensor& queries, const at::Tensor& corpus, int64_t k, int64_t first_index,
                 int64_t block_rows) {
  ANGLE_CHECK(queries.dim() == 2 && corpus.dim() == 2 && queries.size(1) == corpus.size(1), "search: queries ",
              queries.sizes(), " and corpus ", corpus.sizes(), " must be [N, D] of the same D");
  ANGLE_CHECK(k > 0 && corpus.size(0) > 0, "search: k = ", k, " over ", corpus.size(0), " corpus rows");
  c10::InferenceMode no_autograd;
  if (block_rows <= 0) block_rows = std::max<int64_t>(k, (int64_t{1} << 26) / std::max<int64_t>(1, queries.size(0)));
  TopK best;
  for (int64_t start = 0; start < corpus.size(0); start += block_rows) {
    const int64_t rows = std::min(block_rows, corpus.size(0) - start);
    at::Tensor scores = at::matmul(queries, corpus.narrow(0, start, rows).t());
    at::Tensor indices = at::arange(first_index + start, first_index + start + rows, at::kLong).expand_as(scores);
    TopK block = block_first_k(scores, indices, k);
    best = best.scores.defined() ? merge_top_k(best, block, k) : block;
  }
  return best;
}

TopK merge_top_k(const TopK& a, const TopK& b, int64_t k) {
  return first_k(at::cat({a.scores, b.scores}, 1), at::cat({a.indices, b.indices}, 1), k, /*indices_ascending=*/false);
}

TopK merge_across_ranks(const TopK& local, int64_t k, int64_t corpus_rows, comm::Comm& comm) {
  if (comm.size() == 1) return local;
  // Every rank sends k columns, a short shard's padded with scores that sort last.
  const int64_t queries = local.scores.size(0), missing = k - local.scores.size(1);
  at::Tensor scores = local.scores, indices = local.indices;
  if (missing > 0) {
    scores = at::cat({scores, at::full({queries, missing}, -std::numeric_limits<float>::infinity(), at::kFloat)}, 1);
    indices = at::cat({indices, at::full({queries, missing}, std::numeric_limits<int64_t>::max(), at::kLong)}, 1);
  }
  const at::Tensor all_scores = comm.all_gather_rows(scores.contiguous());
  const at::Tensor all_indices = comm.all_gather_rows(indices.contiguous());
  TopK merged{all_scores.narrow(0, 0, queries), all_indices.narrow(0, 0, queries)};
  for (int r = 1; r < comm.size(); ++r)
    merged = merge_top_k(merged, {all_scores.narrow(0, r * queries, queries), all_indices.narrow(0, r * queries, queries)}, k);
  const int64_t keep = std::min(k, corpus_rows);
  return {merged.scores.narrow(1, 0, keep).contiguous(), merged.indices.narrow(1, 0, keep).contiguous()};
}

}  // namespace angle::eval
