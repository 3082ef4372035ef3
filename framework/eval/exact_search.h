// Exact top-k search by inner product (cosine on L2-normalised rows), the corpus scored a block of
// rows at a time so that memory grows with queries x block, not with the corpus. Ties go to the
// lower corpus index, so the top k are one total order's first k: a corpus split into shards, each
// searched on its own and the results merged, gives what one search of the whole corpus gives.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace angle::comm {
class Comm;
}

namespace angle::eval {

// Rows scaled to unit L2 norm (cosine = inner product), as the search expects.
at::Tensor unit_rows(const at::Tensor& x);

struct TopK {
  at::Tensor scores;   // [queries, k'] float, descending; k' = min(k, corpus rows)
  at::Tensor indices;  // [queries, k'] int64 corpus rows (offset by `first_index`)
};

// queries [Q, D], corpus [C, D], float32 on the CPU.
TopK exact_top_k(const at::Tensor& queries, const at::Tensor& corpus, int64_t k, int64_t first_index = 0,
                 int64_t block_rows = 0 /* 0: about 256 MiB of scores per block */);
// The top k of the union of two results over disjoint corpus rows.
TopK merge_top_k(const TopK& a, const TopK& b, int64_t k);
// Every rank's result for its corpus shard (the same queries everywhere) merged: the top k of the
// whole corpus, `corpus_rows` rows in all, on every rank.
TopK merge_across_ranks(const TopK& local, int64_t k, int64_t corpus_rows, comm::Comm& comm);

}  // namespace angle::eval
