#include "eval/hard_negatives.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "comm/comm.h"
#include "core/error.h"
#include "eval/exact_search.h"

namespace angle::eval {

int64_t MiningSet::most_positives() const { return *std::max_element(pairs_per_query.begin(), pairs_per_query.end()); }

MiningSet build_mining_set(const std::vector<std::string>& queries, const std::vector<std::string>& positives,
                           const std::vector<std::string>* corpus) {
  ANGLE_CHECK(!queries.empty() && queries.size() == positives.size(), "mine: ", queries.size(), " queries and ",
              positives.size(), " positives");
  MiningSet set;
  std::unordered_map<std::string, int64_t> corpus_row, query_row;
  auto add_text = [&](const std::string& text, int64_t line) {
    auto [it, fresh] = corpus_row.emplace(text, static_cast<int64_t>(set.corpus.size()));
    if (fresh) set.corpus.push_back(text), set.corpus_rows.push_back(line);
    return it->second;
  };
  if (corpus)
    for (size_t i = 0; i < corpus->size(); ++i) add_text((*corpus)[i], static_cast<int64_t>(i));
  for (size_t i = 0; i < queries.size(); ++i) {
    const int64_t p = add_text(positives[i], -1);
    auto [it, fresh] = query_row.emplace(queries[i], static_cast<int64_t>(set.queries.size()));
    if (fresh) {
      set.queries.push_back(queries[i]), set.query_rows.push_back(static_cast<int64_t>(i));
      set.positives.emplace_back(), set.pairs_per_query.push_back(0);
    }
    ++set.pairs_per_query[static_cast<size_t>(it->second)];
    auto& mine = set.positives[static_cast<size_t>(it->second)];
    if (std::find(mine.begin(), mine.end(), p) == mine.end()) mine.push_back(p);
  }
  return set;
}

int64_t resolved_range_max(const MineFilters& f, int64_t most_positives, int64_t corpus_size) {
  ANGLE_CHECK(f.num_negatives >= 1, "--num-negatives must be at least 1 (got ", f.num_negatives, ")");
  ANGLE_CHECK(f.range_min >= 0, "--range-min must be >= 0 (got ", f.range_min, ")");
  const bool filtered = f.absolute_margin || f.relative_margin || f.max_score;
  const int64_t range_max = f.range_max.value_or(f.range_min + f.num_negatives * (filtered ? 10 : 1) + most_positives);
  ANGLE_CHECK(f.range_min < range_max, "--range-min ", f.range_min, " must be below --range-max ", range_max);
  ANGLE_CHECK(f.num_negatives <= range_max - f.range_min, "cannot mine ", f.num_negatives, " negatives per query: only ",
              range_max - f.range_min, " candidates remain between --range-min ", f.range_min, " and --range-max ",
              range_max);
  ANGLE_CHECK(f.range_min + f.num_negatives <= corpus_size - 1, "--range-min ", f.range_min, " + --num-negatives ",
              f.num_negatives, " asks for more candidates than the corpus has besides a positive (", corpus_size,
              " texts)");
  return range_max;
}

MinedNegatives mine_hard_negatives(const MiningSet& set, const at::Tensor& queries, const CorpusBlocks& blocks,
                                   const MineFilters& f, comm::Comm& comm) {
  c10::InferenceMode no_autograd;
  const auto corpus_size = static_cast<int64_t>(set.corpus.size());
  const int64_t range_max = resolved_range_max(f, set.most_positives(), corpus_size);
  const int64_t k = std::min(range_max + set.most_positives(), corpus_size);
  // Each positive's score is computed by the rank whose block holds it, then summed over ranks.
  std::unordered_map<int64_t, std::vector<std::pair<int64_t, int64_t>>> owners;  // corpus row -> (query, slot)
  int64_t pairs = 0;
  for (size_t q = 0; q < set.positives.size(); ++q)
    for (int64_t p : set.positives[q]) owners[p].push_back({static_cast<int64_t>(q), pairs++});
  at::Tensor positive_scores = at::zeros({pairs}, at::kDouble);

  const int64_t n = queries.size(0);
  TopK local{at::empty({n, 0}, at::kFloat), at::empty({n, 0}, at::kLong)};
  for (CorpusBlock block; blocks(block);) {
    if (block.rows.size(0) == 0) continue;
    TopK top = exact_top_k(queries, block.rows, k);
    top.indices = block.ids.index_select(0, top.indices.flatten()).view_as(top.indices);  // ascending: ties kept
    local = local.scores.size(1) == 0 ? top : merge_top_k(local, top, k);
    const auto ids = block.ids.accessor<int64_t, 1>();
    for (int64_t r = 0; r < block.ids.size(0); ++r) {
      auto it = owners.find(ids[r]);
      if (it == owners.end()) continue;
      for (auto [q, slot] : it->second)
        positive_scores[slot] = at::dot(queries[q], block.rows[r]).item<double>();
    }
  }
  const TopK top = merge_across_ranks(local, k, corpus_size, comm);
  comm.all_reduce_sum(positive_scores);

  MinedNegatives out;
  out.negatives.resize(set.queries.size()), out.scores.resize(set.queries.size());
  const auto scores = top.scores.accessor<float, 2>();
  const auto indices = top.indices.accessor<int64_t, 2>();
  const auto positive = positive_scores.accessor<double, 1>();
  for (int64_t slot = 0; slot < pairs; ++slot) out.positive_scores.push_back(static_cast<float>(positive[slot]));
  int64_t slot = 0;
  for (size_t q = 0; q < set.queries.size(); ++q) {
    const auto& mine = set.positives[q];
    double least = std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < mine.size(); ++j) least = std::min(least, positive[slot + static_cast<int64_t>(j)]);
    slot += static_cast<int64_t>(mine.size());
    // The candidates that pass, in score order; the first range_max of all candidates are eligible.
    int64_t passed = 0;
    for (int64_t j = 0; j < top.scores.size(1); ++j) {
      const auto row = static_cast<int64_t>(q);
      const double s = scores[row][j];
      const int64_t c = indices[row][j];
      if (std::find(mine.begin(), mine.end(), c) != mine.end()) continue;
      if (f.absolute_margin && s + *f.absolute_margin > least) continue;
      if (f.relative_margin && s > least - std::abs(least) * *f.relative_margin) continue;
      if ((f.max_score && s > *f.max_score) || (f.min_score && s < *f.min_score)) continue;
      const int64_t rank = passed++;
      if (rank >= range_max || rank >= f.range_min + f.num_negatives) break;
      if (rank < f.range_min) continue;
      out.negatives[q].push_back(c), out.scores[q].push_back(scores[row][j]);
    }
  }
  return out;
}

}  // namespace angle::eval
