// angle report on single run directories (the sweep's statistics are in sweep/test_sweep.cpp):
// a run counts as finished by its FINISHED marker, its scores come from eval.json, and the table,
// CSV and JSON carry one row per run with its state.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <filesystem>

#include "report/report.h"
#include "tiny_model.h"
#include "train/run_metrics.h"
#include "train/run_record.h"

using namespace angle;
namespace fs = std::filesystem;

namespace {

// A run directory with metrics and an eval.json of this build (format 2); `marked`: FINISHED too.
fs::path make_run(const fs::path& root, const std::string& name, double dev, bool marked) {
  const fs::path run = root / name;
  fs::create_directories(run);
  testing::write_text((run / train::kMetricsFile).string(),
                      "{\"step\":5,\"loss\":0.5,\"elapsed_s\":2}\n{\"step\":5,\"dev\":{\"spearman\":" +
                          std::to_string(dev) + "}}\n");
  const nlohmann::json result = {{"format", train::kEvalFormat}, {"seed", 3}, {"wall_s", 2.0}, {"pairs_per_s", 10.0},
                                 {"best", {{"step", 5}, {"dev", {{"spearman", dev}}}, {"test", {{"spearman", dev - 1}}}}}};
  if (marked) train::write_run_result(run.string(), result, 5);
  else testing::write_text((run / train::kEvalFile).string(), result.dump());
  return run;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report_runs)

BOOST_AUTO_TEST_CASE(runs_are_finished_by_their_marker_and_sorted_by_dev) {
  testing::TempDir dir;
  const fs::path done = make_run(dir.path, "done", 81.5, true);
  const fs::path cut = make_run(dir.path, "cut", 90.0, false);  // eval.json written, FINISHED not
  const report::Report r = report::build_report({done.string(), cut.string()});
  BOOST_TEST_REQUIRE(r.runs.size() == 2u);
  BOOST_TEST(r.runs[0].output_dir == cut.string());  // best dev first
  BOOST_TEST(std::string(sweep::state_name(r.runs[0].status.state)) == "unfinished");
  BOOST_TEST(std::string(sweep::state_name(r.runs[1].status.state)) == "finished");
  BOOST_TEST(*r.runs[1].test == 80.5);
  BOOST_TEST(*r.runs[1].seed == 3u);
  const nlohmann::json j = report::to_json(r);
  BOOST_TEST(j.dump().find("unfinished") != std::string::npos);
  const std::string csv = report::format_csv(r);
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 3);  // header + 2 runs
  BOOST_TEST(report::format_table(r).find("81.50") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
