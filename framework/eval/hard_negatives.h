// Hard-negative mining with sentence-transformers' rules (util/hard_negatives.py,
// mine_hard_negatives with exact search and sampling_strategy "top"), the corpus split across ranks:
// each rank scores its corpus rows block by block against every query, keeps its top candidates,
// and the ranks merge them (eval/exact_search.h), so memory grows with a block, not with the corpus,
// and the result does not depend on the number of ranks.
//   - the corpus is the given texts then the positives, each text once (first occurrence);
//     queries are unique too, each with its unique positives;
//   - a query's candidates are its range_max + (most pairs of a query) nearest corpus texts by
//     cosine; its positives are never negatives; with absolute_margin, a candidate scoring above
//     (its least positive's score − margin) is dropped, with relative_margin one above
//     (least positive − |least positive| · margin); max_score / min_score drop those above / below;
//   - of what is left, in score order (ties: the lower corpus row), the first range_min are skipped
//     and the next num_negatives kept (fewer when fewer are left).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace angle::comm {
class Comm;
}

namespace angle::eval {

struct MineFilters {
  int64_t num_negatives = 3;
  int64_t range_min = 0;
  std::optional<int64_t> range_max;  // default: range_min + num_negatives (x 10 with margins or max_score) + most positives
  std::optional<double> absolute_margin, relative_margin, max_score, min_score;
};

struct MiningSet {
  std::vector<std::string> queries;             // unique, in first-seen order
  std::vector<int64_t> query_rows;              // each unique query's first row in the input
  std::vector<std::vector<int64_t>> positives;  // per unique query: corpus rows, unique, in first-seen order
  std::vector<std::string> corpus;              // unique texts: the given corpus, then the positives
  std::vector<int64_t> corpus_rows;             // each corpus text's first line in the given corpus, or -1
  std::vector<int64_t> pairs_per_query;         // input pairs of each unique query, repeats included
  // The most pairs of one query, repeated pairs counted as sentence-transformers counts them: it
  // sizes the candidate list (range_max + this), which the filters then thin out.
  int64_t most_positives() const;
};

// `corpus` null: the positives are the corpus.
MiningSet build_mining_set(const std::vector<std::string>& queries, const std::vector<std::string>& positives,
                           const std::vector<std::string>* corpus);
// range_max as given or derived (above); checked against the filters and the corpus size (errors
// name the flags).
int64_t resolved_range_max(const MineFilters& filters, int64_t most_positives, int64_t corpus_size);

// This rank's corpus rows, a block at a time: `rows` [n, D] L2-normalised, `ids` [n] int64 ascending
// corpus rows. Returns false when there are no more.
struct CorpusBlock {
  at::Tensor rows, ids;
};
using CorpusBlocks = std::function<bool(CorpusBlock& block)>;

struct MinedNegatives {
  std::vector<std::vector<int64_t>> negatives;  // per unique query: corpus rows, best first
  std::vector<std::vector<float>> scores;       // their cosines
  std::vector<float> positive_scores;           // per (query, positive), in MiningSet order
};

// Collective. `queries` [Q, D] L2-normalised, every rank all of them.
MinedNegatives mine_hard_negatives(const MiningSet& set, const at::Tensor& queries, const CorpusBlocks& blocks,
                                   const MineFilters& filters, comm::Comm& comm);

}  // namespace angle::eval
