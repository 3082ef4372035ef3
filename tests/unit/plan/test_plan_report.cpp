// `angle plan`'s report from one plan::PlanReport: the table's lines (sizes in MiB with one
// decimal, phases in name order, times to 3 significant digits, the memory verdict only with a
// limit) and the JSON's fields.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "plan/plan_report.h"

using namespace angle;

namespace {

plan::PlanReport sample() {
  plan::PlanReport r;
  r.subject = "job.ini", r.ranks = 2, r.stage = 3, r.grad_accum = 1, r.step = 2;
  model::UnitShape unit;
  unit.param_numels = {1 << 20};
  unit.frozen = 5;
  r.shape.units = {unit};
  r.state = {1 << 20, 2 << 20, 1 << 19};  // parameters, gradients, optimizer
  r.peak.runtime = 10 << 20;
  r.runtime_label = "runtime and data";
  r.comm.calls = {{"forward", "all_gather", 1 << 20}, {"backward", "reduce", 3 << 19}, {"forward", "all_reduce", 1 << 20}};
  r.time.compute = 1, r.time1.compute = 1.5;
  r.machine_label = "thread, 2 cores per node";
  return r;
}

std::vector<std::string> table(const plan::PlanReport& r) {
  std::ostringstream out;
  plan::print_report(out, r);
  std::istringstream in(out.str());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(plan_report)

BOOST_AUTO_TEST_CASE(table_lines) {
  const std::vector<std::string> lines = table(sample());
  BOOST_TEST_REQUIRE(lines.size() == 6u);
  BOOST_TEST(lines[0] == "plan: job.ini on 2 rank(s), stage 3, 1048576 trainable parameters (5 frozen)");
  BOOST_TEST(lines[1] == "model state per rank (peak): parameters 1.0 MiB, gradients 2.0 MiB, optimizer 0.5 MiB, "
                         "total 3.5 MiB");
  BOOST_TEST(lines[2] == "peak memory per rank (estimate): 10.0 MiB = runtime and data 10.0 MiB + max(model load "
                         "0.0 MiB, model state 0.0 MiB + 1.15 x (activations 0.0 MiB + "
                         "loss 0.0 MiB))");
  BOOST_TEST(lines[3] == "communication of rank 0 in step 2: 3.5 MiB, backward 1.5 MiB, forward 2.0 MiB");
  BOOST_TEST(lines[4] == "time per step (rank 0): compute 1 s, optimizer 0 s, communication 0 s of which exposed 0 s, "
                         "step 1 s; 1 rank 1.5 s/step, scaling efficiency 75%");
}

BOOST_AUTO_TEST_CASE(memory_verdict_only_with_a_limit) {
  plan::PlanReport r = sample();
  r.fit = plan::MemoryFit{1.5, 1.5e9, true, true, 12};
  const std::vector<std::string> lines = table(r);
  BOOST_TEST_REQUIRE(lines.size() == 7u);
  BOOST_TEST(lines[6] == "peak fits in 1.5 GB per rank; at most ~12 examples per forward pass: train.chunk 12 "
                         "(gradient caching), or without it a global batch up to 24");
  r.fit->max_examples = 0, r.fit->fits = false;
  BOOST_TEST(table(r)[6] == "peak does NOT fit in 1.5 GB per rank; the model alone does not fit: more ranks or a "
                            "higher stage");
}

BOOST_AUTO_TEST_CASE(json_fields) {
  plan::PlanReport r = sample();
  const nlohmann::json j = nlohmann::json::parse(plan::report_json(r));
  BOOST_TEST(j["parameters"].get<int64_t>() == 1 << 20);
  BOOST_TEST(j["frozen_parameters"].get<int64_t>() == 5);
  BOOST_TEST(j["comm_bytes"]["total"].get<uint64_t>() == 7u << 19);
  BOOST_TEST(j["comm_bytes"]["forward"].get<uint64_t>() == 2u << 20);
  BOOST_TEST(j["time"]["scaling_efficiency"].get<double>() == 0.75);
  BOOST_TEST(!j["time"].contains("epoch_s"));
  BOOST_TEST(!j.contains("fits"));
  r.fit = plan::MemoryFit{1.5, 1.5e9, false, true, 0};
  r.steps_per_epoch = 10;
  const nlohmann::json k = nlohmann::json::parse(plan::report_json(r));
  BOOST_TEST(k["memory_limit_bytes"].get<double>() == 1.5e9);
  BOOST_TEST(!k["fits"].get<bool>());
  BOOST_TEST(k["state_fits"].get<bool>());
  BOOST_TEST(k["max_examples_per_forward"].get<int64_t>() == 0);
  BOOST_TEST(k["time"]["epoch_s"].get<double>() == 10.0);
}

BOOST_AUTO_TEST_SUITE_END()
