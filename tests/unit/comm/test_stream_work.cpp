// comm/stream_work.h with a fake device: waiting for a collective orders the compute stream after
// its event and never polls from the host; the host polls only in host waits, under the watchdog,
// which fires with the collective's record when the event never completes.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "comm/stream_work.h"

using namespace angle;

namespace {
class FakeStreams : public comm::DeviceStreams {
 public:
  uint64_t record_on_comm_stream() override { return record("comm"); }
  uint64_t record_on_compute_stream() override { return record("compute"); }
  void compute_waits_for(uint64_t event) override { calls.push_back("compute waits " + std::to_string(event)); }
  bool done(uint64_t event) override {
    ++queries;
    return polls_until_done.count(event) && --polls_until_done[event] <= 0;
  }
  void release(uint64_t event) override { calls.push_back("release " + std::to_string(event)); }

  std::vector<std::string> calls;
  std::map<uint64_t, int> polls_until_done;  // an event absent here never completes
  int queries = 0;

 private:
  uint64_t record(const std::string& stream) {
    calls.push_back("record " + stream + " " + std::to_string(++next_));
    return next_;
  }
  uint64_t next_ = 0;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(stream_work)

BOOST_AUTO_TEST_CASE(wait_is_device_side_and_drops_the_kept_tensors) {
  FakeStreams streams;
  at::Tensor kept = at::ones({4});
  {
    comm::StreamWork work(streams, {7, "all_gather", "[4]", "Float"}, {kept});
    work.launched();
    BOOST_TEST(kept.use_count() == 2);
    work.wait();
    work.wait();  // once only
    BOOST_TEST(streams.queries == 0);  // the host never asked the device
    BOOST_TEST(kept.use_count() == 1);
  }
  const std::vector<std::string> expected = {"record comm 1", "compute waits 1", "release 1"};
  BOOST_TEST(streams.calls == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_unwaited_work_still_orders_the_compute_stream) {
  FakeStreams streams;
  { comm::StreamWork(streams, {1, "reduce_scatter", "[8]", "Float"}, {}).launched(); }
  const std::vector<std::string> expected = {"record comm 1", "compute waits 1", "release 1"};
  BOOST_TEST(streams.calls == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(host_wait_polls_until_done) {
  FakeStreams streams;
  comm::StreamWork work(streams, {2, "all_reduce", "[1]", "Double"}, {});
  work.launched();
  streams.polls_until_done[1] = 3;
  bool fired = false;
  work.wait_on_host({10.0, [&](const comm::CollectiveRecord&) { fired = true; }, {}, [] {}});
  BOOST_TEST(streams.queries == 3);
  BOOST_TEST(!fired);
  BOOST_TEST(work.test());
}

BOOST_AUTO_TEST_CASE(the_watchdog_names_a_collective_that_never_completes) {
  FakeStreams streams;
  const uint64_t event = streams.record_on_comm_stream();
  double now = 0;
  comm::CollectiveRecord seen;
  struct TimedOut {};
  comm::Watchdog watchdog{5.0, [&](const comm::CollectiveRecord& r) {
                            seen = r;
                            throw TimedOut{};
                          },
                          [&] { return now; }, [&] { now += 1.0; }};
  BOOST_CHECK_THROW(comm::host_wait(streams, event, {9, "all_gather", "[2, 3]", "BFloat16"}, watchdog), TimedOut);
  BOOST_TEST(seen.sequence == 9u);
  BOOST_TEST(seen.op == "all_gather");
  BOOST_TEST(now == 6.0);  // gave up at the first poll past 5 s
}

BOOST_AUTO_TEST_SUITE_END()
