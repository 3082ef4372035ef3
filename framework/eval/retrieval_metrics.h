// Retrieval metrics as trec_eval (pytrec_eval, which BEIR and MTEB use) computes them: a query's
// hits are ranked by score, ties by document id in decreasing order; relevance >= 1 is relevant;
// nDCG's gain is the relevance level, discounted by log2(rank + 1), over the ideal order of the
// judged documents; MRR@k is the reciprocal rank of the first relevant hit within the first k
// (BEIR's MRR@k, trec_eval's recip_rank on a run cut at k); Recall@k is the relevant hits within
// the first k over the relevant documents judged. Means run over the judged queries.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "eval/beir_set.h"

namespace angle::eval {

struct Hit {
  std::string doc;
  float score = 0;
};
using Run = std::map<std::string, std::vector<Hit>>;  // query id -> hits, ranked by rank_like_trec_eval

struct RetrievalScores {
  double ndcg_at_10 = 0, mrr_at_10 = 0, recall_at_100 = 0;  // x 100, means over the judged queries
  size_t queries = 0;
};

std::vector<Hit> rank_like_trec_eval(std::vector<Hit> hits);
// On hits already ranked; `judged`: document id -> relevance.
double ndcg_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k);
double reciprocal_rank_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k);
double recall_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k);

// Every query of `qrels` must have hits in `run`, ranked.
RetrievalScores score_run(const Run& run, const Qrels& qrels);

}  // namespace angle::eval
