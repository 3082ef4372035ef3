// Retrieval evaluation of an encoder on a BEIR set: queries and documents embedded (each with its
// own prompt), L2-normalised, every query's 100 nearest documents by cosine found by exact search,
// scored as trec_eval scores them (eval/retrieval_metrics.h). Across ranks: each rank embeds its
// share of the queries (gathered by all) and of the documents (kept), searches its documents, and
// the results are merged (eval/exact_search.h): the same hits at any number of ranks.
#pragma once
#include <optional>
#include <string>

#include "eval/beir_set.h"
#include "eval/embedder.h"
#include "eval/retrieval_metrics.h"

namespace angle::eval {

struct RetrievalOptions {
  EmbedOptions embed;
  std::optional<std::string> query_prompt, doc_prompt;  // unset: the encoder's prompt
  int64_t hits = 100;                                    // per query (Recall@100 needs 100)
};

struct RetrievalResult {
  RetrievalScores scores;
  Run run;  // every judged query's hits, ranked
};

RetrievalResult evaluate_retrieval(const model::Encoder& encoder, const BeirSet& set, const RetrievalOptions& options,
                                   comm::Comm& comm);
// TREC run format, one hit per line: query-id Q0 doc-id rank score tag.
std::string trec_run_text(const Run& run, const std::string& tag);

}  // namespace angle::eval
