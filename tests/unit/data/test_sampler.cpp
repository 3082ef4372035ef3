// The sampler's contract: world-size invariance (rank slices tile every global batch), each epoch
// a permutation, a pure function of (seed, epoch, step) so that resuming from any cursor repeats
// the remaining sequence, and mixing weights honoured.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <map>
#include <set>

#include "data/sampler.h"

using namespace angle::data;

BOOST_AUTO_TEST_SUITE(sampler)

BOOST_AUTO_TEST_CASE(rank_slices_tile_every_global_batch_for_1_2_4_8_ranks) {
  GlobalSampler sampler({103}, {}, 42, 16);  // 7 steps per epoch, the last one 7 examples
  BOOST_TEST(sampler.steps_per_epoch() == 7u);
  for (uint64_t step = 0; step < 2 * sampler.steps_per_epoch(); ++step) {
    auto batch = sampler.global_batch(step);
    BOOST_TEST(batch.size() == (step % 7 == 6 ? 7u : 16u));
    for (int world : {1, 2, 4, 8}) {
      std::vector<ExampleRef> joined;
      for (int rank = 0; rank < world; ++rank) {
        auto [begin, end] = GlobalSampler::rank_slice(batch.size(), rank, world);
        joined.insert(joined.end(), batch.begin() + begin, batch.begin() + end);
      }
      BOOST_TEST_REQUIRE((joined == batch), "step " << step << ", world " << world);
    }
  }
}

BOOST_AUTO_TEST_CASE(each_epoch_is_a_permutation_and_epochs_differ) {
  GlobalSampler sampler({50}, {}, 7, 8);
  std::vector<uint64_t> first, second;
  for (uint64_t step = 0; step < 2 * sampler.steps_per_epoch(); ++step)
    for (const auto& ref : sampler.global_batch(step))
      (step < sampler.steps_per_epoch() ? first : second).push_back(ref.index);
  BOOST_TEST(std::set<uint64_t>(first.begin(), first.end()).size() == 50u);
  BOOST_TEST(std::set<uint64_t>(second.begin(), second.end()).size() == 50u);
  BOOST_TEST((first != second));
  GlobalSampler other_seed({50}, {}, 8, 8);
  BOOST_TEST((other_seed.global_batch(0) != sampler.global_batch(0)));
}

// The same orders as the Python replica, tests/oracle/sampler_order.py, which the side-by-side
// benchmarks use to give angle-emb our batches: a change here must change it too.
BOOST_AUTO_TEST_CASE(epoch_permutation_golden) {
  BOOST_TEST((epoch_permutation(12, 42, 0) == std::vector<uint64_t>{10, 7, 6, 11, 1, 4, 5, 8, 0, 3, 2, 9}));
  BOOST_TEST((epoch_permutation(12, 42, 1) == std::vector<uint64_t>{9, 5, 2, 4, 7, 8, 6, 11, 10, 0, 1, 3}));
  BOOST_TEST((epoch_permutation(7, 0, 0) == std::vector<uint64_t>{5, 6, 4, 3, 0, 1, 2}));
  GlobalSampler single({12}, {}, 42, 5);  // one set: the epoch is epoch_permutation's order
  std::vector<uint64_t> second_batch;
  for (const auto& ref : single.global_batch(1)) second_batch.push_back(ref.index);
  BOOST_TEST((second_batch == std::vector<uint64_t>{4, 5, 8, 0, 3}));
}

BOOST_AUTO_TEST_CASE(resuming_from_any_cursor_repeats_the_remaining_sequence) {
  GlobalSampler straight({37, 20}, {2.0, 1.0}, 3, 5);
  const uint64_t steps = 3 * straight.steps_per_epoch();
  std::vector<std::vector<ExampleRef>> expected;
  uint64_t consumed = 0;
  for (uint64_t s = 0; s < steps; ++s) {
    expected.push_back(straight.global_batch(s));
    consumed += expected.back().size();
    BOOST_TEST_REQUIRE(straight.cursor_after(s) == consumed);
  }
  for (uint64_t resume = 0; resume < steps; ++resume) {
    GlobalSampler restarted({37, 20}, {2.0, 1.0}, 3, 5);  // a fresh process: no state but the step
    for (uint64_t s = resume; s < steps; ++s)
      BOOST_TEST_REQUIRE((restarted.global_batch(s) == expected[s]), "resume at " << resume << ", step " << s);
  }
}

BOOST_AUTO_TEST_CASE(mixing_weights_give_the_requested_proportions) {
  // 1000 + 100 examples mixed 1:3: per epoch 275 from the first, 825 from the second (which is
  // therefore cycled ~8 times); every window of 200 draws stays within 4 sigma of 75%.
  GlobalSampler sampler({1000, 100}, {1.0, 3.0}, 11, 50);
  const auto& epoch = sampler.epoch(0);
  BOOST_TEST(epoch.size() == 1100u);
  std::map<uint32_t, size_t> counts;
  for (const auto& ref : epoch) ++counts[ref.dataset];
  BOOST_TEST(counts[0] == 275u);
  BOOST_TEST(counts[1] == 825u);
  const double p = 0.75, n = 200, sigma = std::sqrt(n * p * (1 - p));
  for (size_t start = 0; start + 200 <= epoch.size(); start += 100) {
    size_t second = 0;
    for (size_t i = start; i < start + 200; ++i) second += epoch[i].dataset == 1;
    BOOST_TEST(std::abs(static_cast<double>(second) - n * p) <= 4 * sigma, "window at " << start << ": " << second);
  }
  // The small set is used evenly: each example 8 or 9 times.
  std::map<uint64_t, int> uses;
  for (const auto& ref : epoch)
    if (ref.dataset == 1) ++uses[ref.index];
  for (const auto& [index, n_uses] : uses) BOOST_TEST((n_uses == 8 || n_uses == 9));
}

BOOST_AUTO_TEST_CASE(bad_configurations_are_errors) {
  BOOST_CHECK_THROW(GlobalSampler({10, 5}, {1.0}, 1, 4), std::exception);
  BOOST_CHECK_THROW(GlobalSampler({10}, {-1.0}, 1, 4), std::exception);
  BOOST_CHECK_THROW(GlobalSampler({0}, {}, 1, 4), std::exception);
  BOOST_CHECK_THROW(GlobalSampler::rank_slice(8, 2, 2), std::exception);
}

BOOST_AUTO_TEST_SUITE_END()
