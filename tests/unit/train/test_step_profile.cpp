#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>

#include "core/log.h"
#include "train/step_profile.h"

using namespace angle;
using namespace angle::train;
namespace tt = boost::test_tools;

namespace {
void sleep_for(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }
void spin_for_cpu(double seconds) {  // busy until this process used `seconds` of CPU (a loaded machine takes longer)
  const double end = process_cpu_seconds() + seconds;
  volatile double x = 0;
  while (process_cpu_seconds() < end) x = x + 1;
}
double phase(const nlohmann::json& j, const char* key, const char* name) { return j[key][name].get<double>(); }
}  // namespace

BOOST_AUTO_TEST_SUITE(step_profile)

// A sleeping phase takes wall time but no CPU; a spinning one CPU time, and at least as much wall
// (one thread).
BOOST_AUTO_TEST_CASE(wall_and_cpu_of_a_phase) {
  StepProfile profile;
  profile.start();
  {
    StepProfile::Scope scope(&profile, Phase::kData);
    sleep_for(0.05);
  }
  {
    StepProfile::Scope scope(&profile, Phase::kForward);
    spin_for_cpu(0.05);
  }
  profile.end_step();
  const nlohmann::json j = profile.take_window();
  BOOST_TEST(phase(j, "phase_s", "data") >= 0.05);
  BOOST_TEST(phase(j, "phase_s", "data") < 0.5);
  BOOST_TEST(phase(j, "phase_cpu_s", "data") < 0.02);
  BOOST_TEST(phase(j, "phase_cpu_s", "forward") >= 0.05);
  BOOST_TEST(phase(j, "phase_cpu_s", "forward") < 0.2);
  BOOST_TEST(phase(j, "phase_s", "forward") >= 0.98 * phase(j, "phase_cpu_s", "forward"));
  BOOST_TEST(phase(j, "phase_s", "backward") == 0.0);
}

// Every second between start() and the last end_step() is in exactly one phase: what no scope
// claimed is `other`; the evaluation after a step is reported with the next step; per-step means.
BOOST_AUTO_TEST_CASE(phases_cover_the_run) {
  StepProfile profile;
  const double start = now_seconds();
  profile.start();
  for (int step = 0; step < 2; ++step) {
    {
      StepProfile::Scope scope(&profile, Phase::kBackward);
      sleep_for(0.02);
    }
    sleep_for(0.03);  // unclaimed: other
    profile.end_step();
    StepProfile::Scope scope(&profile, Phase::kEval);
    sleep_for(0.04);
  }
  const nlohmann::json window = profile.take_window();  // 2 steps; the second evaluation comes after
  profile.end_run();
  const double elapsed = now_seconds() - start;
  BOOST_TEST(phase(window, "phase_s", "backward") >= 0.02);
  BOOST_TEST(phase(window, "phase_s", "other") >= 0.03);
  BOOST_TEST(phase(window, "phase_s", "eval") >= 0.04 / 2);  // one evaluation over two steps
  BOOST_TEST(phase(window, "phase_s", "eval") < 0.04);
  const nlohmann::json run = profile.run_json();
  BOOST_TEST(run["steps"].get<long>() == 2);
  double total = 0, shares = 0;
  for (const auto& [name, p] : run["phases"].items()) total += p["wall_s"].get<double>(), shares += p["share"].get<double>();
  BOOST_TEST(total == run["total_s"].get<double>(), tt::tolerance(1e-12));
  BOOST_TEST(total == elapsed, tt::tolerance(0.02));  // nothing lost, nothing counted twice
  BOOST_TEST(shares == 1.0, tt::tolerance(1e-9));
  BOOST_TEST(run["phases"]["eval"]["wall_s"].get<double>() >= 0.08);
  BOOST_TEST(profile.run_step_seconds() == total - run["phases"]["eval"]["wall_s"].get<double>(), tt::tolerance(1e-9));
  BOOST_TEST(profile.run_table().find("eval") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// With a device clock (CUDA events on a GPU; a fake here), each timed phase also gets the device
// seconds between its start and end marks, read at the end of the step; without one, no such key.
namespace {
class FakeClock : public DeviceClock {
 public:
  uint64_t mark() override { return ++marks; }
  double seconds_between(uint64_t from, uint64_t to) override { return 0.5 * static_cast<double>(to - from); }
  void release(uint64_t) override { ++released; }
  uint64_t marks = 0;
  int released = 0;
};
}  // namespace

BOOST_AUTO_TEST_CASE(device_seconds_per_phase_from_the_device_clock) {
  StepProfile plain;
  plain.start();
  { StepProfile::Scope forward(&plain, Phase::kForward); }
  plain.end_step();
  BOOST_TEST(!plain.take_window().contains("phase_device_s"));

  StepProfile profile;
  auto owned = std::make_unique<FakeClock>();
  FakeClock* clock = owned.get();
  profile.set_device_clock(std::move(owned));
  profile.start();
  for (int step = 0; step < 2; ++step) {
    { StepProfile::Scope forward(&profile, Phase::kForward); }  // marks k, k+1: 0.5 s
    const uint64_t from = profile.device_mark();
    clock->marks += 3;  // three marks elsewhere (a nested scope's): 2.0 s
    profile.add_device_span(Phase::kOptimizer, from, profile.device_mark());
    profile.end_step();
  }
  const nlohmann::json window = profile.take_window();
  BOOST_TEST(window["phase_device_s"]["forward"].get<double>() == 0.5);    // per step
  BOOST_TEST(window["phase_device_s"]["optimizer"].get<double>() == 2.0);
  BOOST_TEST(window["phase_device_s"]["loss"].get<double>() == 0.0);
  BOOST_TEST(profile.run_json()["phases"]["forward"]["device_s"].get<double>() == 1.0);  // the run's total
  BOOST_TEST(clock->released == 8);  // both marks of each span, once read
  BOOST_TEST(profile.run_table().find("device s/step") != std::string::npos);
}
