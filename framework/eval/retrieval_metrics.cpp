#include "eval/retrieval_metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace angle::eval {
namespace {

int relevance(const std::map<std::string, int>& judged, const std::string& doc) {
  auto it = judged.find(doc);
  return it == judged.end() ? 0 : it->second;
}

}  // namespace

std::vector<Hit> rank_like_trec_eval(std::vector<Hit> hits) {
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.doc > b.doc;
  });
  return hits;
}

double ndcg_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k) {
  double dcg = 0, ideal = 0;
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i)
    dcg += std::max(0, relevance(judged, ranked[i].doc)) / std::log2(static_cast<double>(i) + 2);
  std::vector<int> levels;
  for (const auto& [doc, level] : judged)
    if (level > 0) levels.push_back(level);
  std::sort(levels.begin(), levels.end(), std::greater<>());
  for (size_t i = 0; i < std::min(k, levels.size()); ++i) ideal += levels[i] / std::log2(static_cast<double>(i) + 2);
  return ideal > 0 ? dcg / ideal : 0;
}

double reciprocal_rank_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k) {
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i)
    if (relevance(judged, ranked[i].doc) >= 1) return 1.0 / static_cast<double>(i + 1);
  return 0;
}

double recall_at(const std::vector<Hit>& ranked, const std::map<std::string, int>& judged, size_t k) {
  size_t relevant = 0, found = 0;
  for (const auto& [doc, level] : judged) relevant += level >= 1;
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) found += relevance(judged, ranked[i].doc) >= 1;
  return relevant ? static_cast<double>(found) / static_cast<double>(relevant) : 0;
}

RetrievalScores score_run(const Run& run, const Qrels& qrels) {
  RetrievalScores scores;
  for (const auto& [query, judged] : qrels) {
    auto hits = run.find(query);
    ANGLE_CHECK(hits != run.end() && !hits->second.empty(), "no hits for judged query '", query, "'");
    const std::vector<Hit>& ranked = hits->second;
    scores.ndcg_at_10 += ndcg_at(ranked, judged, 10);
    scores.mrr_at_10 += reciprocal_rank_at(ranked, judged, 10);
    scores.recall_at_100 += recall_at(ranked, judged, 100);
    ++scores.queries;
  }
  const double n = static_cast<double>(scores.queries) / 100;
  scores.ndcg_at_10 /= n, scores.mrr_at_10 /= n, scores.recall_at_100 /= n;
  return scores;
}

}  // namespace angle::eval
