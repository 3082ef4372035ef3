#include "eval/retrieval_eval.h"

#include <ATen/ATen.h>

#include <cstdio>

#include "comm/comm.h"
#include "eval/exact_search.h"

namespace angle::eval {
namespace {

EmbedOptions with_prompt(EmbedOptions options, const std::optional<std::string>& prompt) {
  if (prompt) options.prompt = prompt;
  return options;
}

}  // namespace

RetrievalResult evaluate_retrieval(const model::Encoder& encoder, const BeirSet& set, const RetrievalOptions& options,
                                   comm::Comm& comm) {
  const at::Tensor queries =
      unit_rows(embed_texts(encoder, set.query_texts, with_prompt(options.embed, options.query_prompt), comm));
  const EmbeddedShare docs = embed_share(encoder, set.doc_texts, with_prompt(options.embed, options.doc_prompt), comm);
  TopK local{at::empty({queries.size(0), 0}, at::kFloat), at::empty({queries.size(0), 0}, at::kLong)};
  if (docs.rows.size(0) > 0) {
    local = exact_top_k(queries, unit_rows(docs.rows), options.hits);
    // Local rows to document numbers: ascending, so ties still go to the lower document.
    local.indices = docs.ids.index_select(0, local.indices.flatten()).view_as(local.indices);
  }
  const TopK top = merge_across_ranks(local, options.hits, static_cast<int64_t>(set.doc_ids.size()), comm);

  RetrievalResult result;
  const auto scores = top.scores.accessor<float, 2>();
  const auto indices = top.indices.accessor<int64_t, 2>();
  for (size_t q = 0; q < set.query_ids.size(); ++q) {
    const auto row = static_cast<int64_t>(q);
    std::vector<Hit> hits;
    for (int64_t j = 0; j < top.scores.size(1); ++j)
      hits.push_back({set.doc_ids[static_cast<size_t>(indices[row][j])], scores[row][j]});
    result.run[set.query_ids[q]] = rank_like_trec_eval(std::move(hits));
  }
  result.scores = score_run(result.run, set.qrels);
  return result;
}

std::string trec_run_text(const Run& run, const std::string& tag) {
  std::string text;
  char score[32];
  for (const auto& [query, hits] : run)
    for (size_t r = 0; r < hits.size(); ++r) {
      std::snprintf(score, sizeof score, "%.9g", hits[r].score);  // float32 round-trips in 9 digits
      text += query + " Q0 " + hits[r].doc + " " + std::to_string(r + 1) + " " + score + " " + tag + "\n";
    }
  return text;
}

}  // namespace angle::eval
