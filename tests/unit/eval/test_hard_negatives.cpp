// Hard-negative mining's bookkeeping and selection on hand-made vectors (the comparison with
// sentence-transformers on a real model is tests/mpi/check_mine.py).
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "comm/comm.h"
#include "core/error.h"
#include "eval/hard_negatives.h"

using namespace angle::eval;

BOOST_AUTO_TEST_SUITE(hard_negatives)

BOOST_AUTO_TEST_CASE(mining_set_keeps_first_occurrences_as_sentence_transformers) {
  const std::vector<std::string> queries{"q1", "q2", "q1", "q1", "q3"}, positives{"a", "b", "c", "a", "b"};
  const std::vector<std::string> corpus{"x", "b", "x", "y"};
  const MiningSet set = build_mining_set(queries, positives, &corpus);
  BOOST_TEST(set.queries == (std::vector<std::string>{"q1", "q2", "q3"}));
  BOOST_TEST(set.query_rows == (std::vector<int64_t>{0, 1, 4}));
  BOOST_TEST(set.corpus == (std::vector<std::string>{"x", "b", "y", "a", "c"}));  // corpus, then new positives
  BOOST_TEST(set.corpus_rows == (std::vector<int64_t>{0, 1, 3, -1, -1}));
  BOOST_TEST(set.positives[0] == (std::vector<int64_t>{3, 4}));  // "a" once, then "c"
  BOOST_TEST(set.positives[1] == (std::vector<int64_t>{1}));
  BOOST_TEST(set.most_positives() == 3);  // q1's three pairs, the repeat counted (as pandas' groupby count)
}

BOOST_AUTO_TEST_CASE(selection_skips_positives_applies_margins_and_ranges) {
  // Queries and corpus on the unit circle: cosines are exact cosines of angles.
  auto at_angle = [](double degrees) {
    const double r = degrees * M_PI / 180;
    return std::vector<float>{static_cast<float>(std::cos(r)), static_cast<float>(std::sin(r))};
  };
  std::vector<float> flat;
  const std::vector<double> angles{0, 10, 20, 30, 40, 50, 60, 70};  // corpus rows 0..7, "d0".."d7"
  std::vector<std::string> corpus;
  for (size_t i = 0; i < angles.size(); ++i) {
    auto v = at_angle(angles[i]);
    flat.insert(flat.end(), v.begin(), v.end());
    corpus.push_back("d" + std::to_string(i));
  }
  const at::Tensor rows = at::tensor(flat, at::kFloat).view({8, 2});
  const MiningSet set = build_mining_set({"q"}, {"d2"}, &corpus);  // the positive at 20 degrees
  const at::Tensor query = at::tensor(at_angle(0), at::kFloat).view({1, 2});
  auto mine = [&](MineFilters f) {
    auto comm = angle::comm::make_comm("single");
    bool given = false;
    CorpusBlocks blocks = [&](CorpusBlock& b) {
      if (given) return false;
      b = {rows, at::arange(8, at::kLong)};
      return given = true;
    };
    return mine_hard_negatives(set, query, blocks, f, *comm).negatives[0];
  };
  MineFilters f;
  BOOST_TEST(mine(f) == (std::vector<int64_t>{0, 1, 3}));  // nearest first, the positive (2) skipped
  f.range_min = 1, f.num_negatives = 2;
  BOOST_TEST(mine(f) == (std::vector<int64_t>{1, 3}));
  f = {};
  f.absolute_margin = 0.02;  // drop cosines above cos 20° − 0.02 = 0.9197: 0°, 10° (0.985) go
  BOOST_TEST(mine(f) == (std::vector<int64_t>{3, 4, 5}));
  f = {};
  // The candidates are the range_max + 1 nearest (0°..50°): 0° and 10° score above 0.9, 20° is the
  // positive, and what is left is fewer than asked for.
  f.max_score = 0.9, f.num_negatives = 5, f.range_max = 5;
  BOOST_TEST(mine(f) == (std::vector<int64_t>{3, 4, 5}));
  f = {};
  f.min_score = 0.7;  // cos 40° = 0.766 stays, cos 50° = 0.643 goes
  f.num_negatives = 5, f.range_max = 6;
  BOOST_TEST(mine(f) == (std::vector<int64_t>{0, 1, 3, 4}));
  f = {};
  f.num_negatives = 8;  // 8 negatives out of 8 texts, one of them the positive
  BOOST_CHECK_THROW(mine(f), angle::Error);
}

BOOST_AUTO_TEST_SUITE_END()
