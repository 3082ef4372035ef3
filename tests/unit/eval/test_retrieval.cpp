// Retrieval: the metrics on a hand-made case in closed form, trec_eval's tie order, exact search
// against a brute-force second path (and shard-merge invariance), and the BEIR reader's errors.
// The metrics against pytrec_eval: tests/oracle/check_retrieval.py.
#include <ATen/ATen.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "eval/beir_set.h"
#include "eval/exact_search.h"
#include "eval/retrieval_metrics.h"
#include "tiny_model.h"

using namespace angle::eval;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(retrieval)

BOOST_AUTO_TEST_CASE(metrics_closed_form) {
  // Judged: d1 level 2, d2 level 1, d3 level 0. Ranked: d3, d2, d4, d1.
  const std::map<std::string, int> judged{{"d1", 2}, {"d2", 1}, {"d3", 0}};
  const std::vector<Hit> ranked{{"d3", 0.9f}, {"d2", 0.8f}, {"d4", 0.7f}, {"d1", 0.6f}};
  const double dcg = 1 / std::log2(3.0) + 2 / std::log2(5.0), ideal = 2 / std::log2(2.0) + 1 / std::log2(3.0);
  BOOST_TEST(ndcg_at(ranked, judged, 10) == dcg / ideal, tt::tolerance(1e-12));
  BOOST_TEST(ndcg_at(ranked, judged, 2) == (1 / std::log2(3.0)) / ideal, tt::tolerance(1e-12));
  BOOST_TEST(reciprocal_rank_at(ranked, judged, 10) == 0.5);
  BOOST_TEST(reciprocal_rank_at(ranked, judged, 1) == 0.0);
  BOOST_TEST(recall_at(ranked, judged, 100) == 1.0);
  BOOST_TEST(recall_at(ranked, judged, 3) == 0.5);
  BOOST_TEST(ndcg_at(ranked, {{"d3", 0}}, 10) == 0.0);  // nothing relevant judged

  // Two queries: the means, x 100.
  const Run run{{"q1", ranked}, {"q2", {{"d9", 0.5f}}}};
  const RetrievalScores s = score_run(run, {{"q1", judged}, {"q2", {{"d9", 1}}}});
  BOOST_TEST(s.queries == 2u);
  BOOST_TEST(s.ndcg_at_10 == 50 * (dcg / ideal + 1), tt::tolerance(1e-9));
  BOOST_TEST(s.mrr_at_10 == 50 * (0.5 + 1), tt::tolerance(1e-9));
  BOOST_TEST(s.recall_at_100 == 100.0, tt::tolerance(1e-9));
  BOOST_CHECK_THROW(score_run(run, {{"q3", judged}}), angle::Error);  // a judged query without hits
}

BOOST_AUTO_TEST_CASE(ties_rank_by_document_id_descending_as_trec_eval) {
  const std::vector<Hit> ranked = rank_like_trec_eval({{"a", 0.5f}, {"c", 0.5f}, {"b", 0.7f}, {"b2", 0.5f}});
  std::vector<std::string> ids;
  for (const Hit& h : ranked) ids.push_back(h.doc);
  BOOST_TEST(ids == (std::vector<std::string>{"b", "c", "b2", "a"}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(exact_search_equals_brute_force_and_shards_merge_to_the_whole) {
  // Small integer vectors: exact dot products, and many equal scores to break ties on.
  at::manual_seed(3);
  const at::Tensor queries = at::randint(-2, 3, {9, 8}).to(at::kFloat);
  const at::Tensor corpus = at::randint(-2, 3, {57, 8}).to(at::kFloat);
  const int64_t k = 12;
  const TopK whole = exact_top_k(queries, corpus, k, 0, /*block_rows=*/5);  // 12 blocks, each sorted whole
  // Blocks above k take at::topk, and rows with ties at the k-th score are sorted whole.
  for (int64_t block_rows : {13, 40, 57}) {
    const TopK blocked = exact_top_k(queries, corpus, k, 0, block_rows);
    BOOST_TEST(at::equal(blocked.indices, whole.indices), "blocks of " << block_rows);
    BOOST_TEST(at::equal(blocked.scores, whole.scores), "blocks of " << block_rows);
  }
  for (int64_t q = 0; q < queries.size(0); ++q) {
    std::vector<std::pair<float, int64_t>> all;
    for (int64_t c = 0; c < corpus.size(0); ++c) {
      float dot = 0;
      for (int64_t d = 0; d < 8; ++d) dot += queries[q][d].item<float>() * corpus[c][d].item<float>();
      all.push_back({dot, c});
    }
    std::sort(all.begin(), all.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    for (int64_t j = 0; j < k; ++j) {
      BOOST_TEST_REQUIRE(whole.indices[q][j].item<int64_t>() == all[static_cast<size_t>(j)].second, "query " << q << " hit " << j);
      BOOST_TEST_REQUIRE(whole.scores[q][j].item<float>() == all[static_cast<size_t>(j)].first);
    }
  }
  for (int64_t split : {1, 20, 56}) {  // shards [0, split) and [split, 57), merged in either order
    const TopK a = exact_top_k(queries, corpus.narrow(0, 0, split), k, 0);
    const TopK b = exact_top_k(queries, corpus.narrow(0, split, 57 - split), k, split, 7);
    for (const TopK& merged : {merge_top_k(a, b, k), merge_top_k(b, a, k)}) {
      BOOST_TEST(at::equal(merged.indices, whole.indices), "split " << split);
      BOOST_TEST(at::equal(merged.scores, whole.scores), "split " << split);
    }
  }
  BOOST_TEST(exact_top_k(queries, corpus.narrow(0, 0, 3), k).indices.size(1) == 3);  // k above the corpus
}

namespace {

void expect_beir_error(const std::string& corpus, const std::string& queries, const std::string& qrels,
                       const std::string& fragment) {
  angle::testing::TempDir dir;
  std::filesystem::create_directories(dir.path / "qrels");
  angle::testing::write_text(dir.file("corpus.jsonl"), corpus);
  angle::testing::write_text(dir.file("queries.jsonl"), queries);
  angle::testing::write_text(dir.file("qrels/test.tsv"), qrels);
  try {
    read_beir(dir.path.string());
    BOOST_ERROR("no error for: " << fragment);
  } catch (const angle::Error& e) {
    BOOST_TEST(std::string(e.what()).find(fragment) != std::string::npos, e.what() << " lacks " << fragment);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(beir_reads_judged_queries_and_titled_documents) {
  angle::testing::TempDir dir;
  std::filesystem::create_directories(dir.path / "qrels");
  angle::testing::write_text(dir.file("corpus.jsonl"),
                             "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"one\"}\n{\"_id\": 7, \"text\": \" two \"}\n");
  angle::testing::write_text(dir.file("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q2\", \"text\": \"b\"}\n");
  angle::testing::write_text(dir.file("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq2\t7\t1\n");
  const BeirSet set = read_beir(dir.path.string());
  BOOST_TEST(set.doc_ids == (std::vector<std::string>{"d1", "7"}), tt::per_element());
  BOOST_TEST(set.doc_texts == (std::vector<std::string>{"T one", "two"}), tt::per_element());
  BOOST_TEST(set.query_ids == (std::vector<std::string>{"q2"}), tt::per_element());  // q1 is not judged
  BOOST_TEST(set.qrels.at("q2").at("7") == 1);
}

BOOST_AUTO_TEST_CASE(beir_errors_name_the_file_and_line) {
  const std::string corpus = "{\"_id\": \"d1\", \"text\": \"x\"}\n", queries = "{\"_id\": \"q1\", \"text\": \"y\"}\n";
  const std::string header = "query-id\tcorpus-id\tscore\n";
  expect_beir_error(corpus, queries, header + "q1\td2\t1\n", "qrels/test.tsv:2: corpus-id 'd2' is not in");
  expect_beir_error(corpus, queries, header + "q9\td1\t1\n", "query-id 'q9' is not in");
  expect_beir_error(corpus, queries, header + "q1\td1\thigh\n", "qrels/test.tsv:2: score 'high' is not an integer");
  expect_beir_error(corpus, queries, header + "q1 d1 1\n", "expected 3 tab-separated fields");
  expect_beir_error(corpus + "{\"text\": \"z\"}\n", queries, header + "q1\td1\t1\n", "corpus.jsonl:2: missing field '_id'");
  expect_beir_error(corpus + corpus, queries, header + "q1\td1\t1\n", "corpus.jsonl:2: document id 'd1' appears twice");
  expect_beir_error("{\"_id\": \"d 1\", \"text\": \"x\"}\n", queries, header, "holds white space");
  expect_beir_error(corpus, "not json\n", header + "q1\td1\t1\n", "queries.jsonl:1: not a JSON object");
  expect_beir_error(corpus, queries, header, "no judgements");
}

BOOST_AUTO_TEST_SUITE_END()
