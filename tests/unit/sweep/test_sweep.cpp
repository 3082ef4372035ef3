// The sweep's manifest and the report's arithmetic: the grid product in manifest order (closed
// form: first axis outermost, seeds innermost), a manifest round trip, run states from the run
// files, Slurm array specs, and the report's mean and sample std against hand-computed values.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.h"
#include "report/report.h"
#include "sweep/run_state.h"
#include "sweep/slurm_array.h"
#include "sweep/sweep.h"
#include "tiny_model.h"
#include "train/run_record.h"

using namespace angle;
namespace fs = std::filesystem;

namespace {

std::string write_job(const fs::path& dir) {
  const fs::path job = dir / "job.ini";
  std::ofstream(job) << "[model]\npath = model\n[data]\ntrain = stsb:train.csv\n[train]\nseed = 7\n";
  return job.string();
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string state_of(const fs::path& run) { return sweep::state_name(sweep::run_status(run.string()).state); }

}  // namespace

BOOST_AUTO_TEST_SUITE(sweep_and_report)

BOOST_AUTO_TEST_CASE(grid_product_in_manifest_order_with_seeds_innermost) {
  testing::TempDir dir;
  const auto s = sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.lr=1e-5,2e-5,3e-5"),
                                                         sweep::parse_grid("train.global_batch=16,32")},
                                   {{"train.max_steps", "10"}}, 2);
  BOOST_TEST_REQUIRE(s.runs.size() == 12u);
  for (int i = 0; i < 12; ++i) {
    const auto& run = s.runs[static_cast<size_t>(i)];
    BOOST_TEST(run.index == i);
    BOOST_TEST(run.overrides[0].second == std::vector<std::string>({"1e-5", "2e-5", "3e-5"})[static_cast<size_t>(i / 4)]);
    BOOST_TEST(run.overrides[1].second == std::vector<std::string>({"16", "32"})[static_cast<size_t>(i / 2 % 2)]);
    BOOST_TEST(run.seed == 7u + static_cast<uint64_t>(i % 2));  // the job's seed, +1
  }
  BOOST_TEST(s.runs[11].output_dir == "run-011");
  const auto args = sweep::train_arguments(s, s.runs[5], "/sweeps/x");
  const std::vector<std::string> tail(args.end() - 6, args.end());
  BOOST_TEST(tail == std::vector<std::string>({"--train.seed", "8", "--run.output_dir", "/sweeps/x/run-005",
                                               "--run.resume", "auto"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(manifest_round_trip_and_comparison) {
  testing::TempDir dir;
  const auto s = sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.lr=1e-5,2e-5")}, {}, 3);
  sweep::write_manifest(s, (dir.path / "sweep").string());
  const auto back = sweep::read_manifest((dir.path / "sweep").string());
  BOOST_TEST(sweep::same_sweep(s, back));
  const auto other = sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.lr=1e-5,3e-5")}, {}, 3);
  BOOST_TEST(!sweep::same_sweep(s, other));
}

BOOST_AUTO_TEST_CASE(bad_grids_are_errors) {
  testing::TempDir dir;
  BOOST_CHECK_THROW(sweep::parse_grid("optim.lr"), Error);
  BOOST_CHECK_THROW(sweep::parse_grid("optim.lr=1,,2"), Error);
  BOOST_CHECK_THROW(sweep::parse_grid("optim.lr=1,1"), Error);
  BOOST_CHECK_THROW(sweep::parse_grid("lr=1,2"), Error);
  BOOST_CHECK_THROW(sweep::parse_grid("run.output_dir=a,b"), Error);
  BOOST_CHECK_THROW(sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.nosuch=1,2")}, {}, 1), Error);
  BOOST_CHECK_THROW(sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.lr=1,2")}, {{"optim.lr", "3"}}, 1),
                    Error);
  BOOST_CHECK_THROW(sweep::make_sweep(write_job(dir.path), {}, {}, 0), Error);
}

BOOST_AUTO_TEST_CASE(run_states_from_the_run_files) {
  testing::TempDir dir;
  const fs::path run = dir.path / "run";
  BOOST_TEST(state_of(run) == "pending");
  write(run / train::kMetricsFile, "{\"step\":1,\"loss\":2.0}\n");
  BOOST_TEST(state_of(run) == "unfinished");
  train::record_failure(run.string(), 3, "disk full");
  const auto failed = sweep::run_status(run.string());
  BOOST_TEST(std::string(sweep::state_name(failed.state)) == "failed");
  BOOST_TEST(failed.error == "rank 3: disk full");
  write(run / train::kEvalFile, "{}");
  BOOST_TEST(state_of(run) == "finished");
  train::record_failure((dir.path / "absent").string(), 0, "x");  // no directory: nothing written
  BOOST_TEST(!fs::exists(dir.path / "absent"));
}

BOOST_AUTO_TEST_CASE(slurm_array_specs) {
  BOOST_TEST(sweep::array_spec({0, 1, 2, 7}, 0) == "0,1,2,7");
  BOOST_TEST(sweep::array_spec({5}, 2) == "5%2");
}

BOOST_AUTO_TEST_CASE(report_statistics_and_order) {
  testing::TempDir dir;
  const auto s = sweep::make_sweep(write_job(dir.path), {sweep::parse_grid("optim.lr=1e-5,2e-5")}, {}, 3);
  const fs::path root = dir.path / "sweep";
  sweep::write_manifest(s, root.string());
  // lr 1e-5: dev 80, 82, 87 (all finished); lr 2e-5: dev 90 finished, 95 unfinished, one failed
  const double dev[] = {80, 82, 87, 90, 95, 0};
  for (int i = 0; i < 6; ++i) {
    const fs::path run = root / s.runs[static_cast<size_t>(i)].output_dir;
    write(run / train::kMetricsFile, "{\"step\":10,\"loss\":1.5,\"elapsed_s\":4}\n{\"step\":10,\"dev\":{\"spearman\":" +
                                         std::to_string(dev[i]) + "}}\n{\"step\":20,\"lo");  // last line cut
    if (i < 4) write(run / train::kEvalFile, "{\"best\":{\"step\":10,\"dev\":{\"spearman\":" + std::to_string(dev[i]) +
                                                 "},\"test\":{\"spearman\":" + std::to_string(dev[i] - 5) + "}}}");
    if (i == 5) train::record_failure(run.string(), 1, "boom");
  }
  const auto report = report::build_report({root.string()});
  BOOST_TEST_REQUIRE(report.runs.size() == 6u);
  std::vector<int> order;
  for (const auto& r : report.runs) order.push_back(r.index);
  BOOST_TEST(order == std::vector<int>({4, 3, 2, 1, 0, 5}), boost::test_tools::per_element());  // failed: no dev
  BOOST_TEST(std::string(sweep::state_name(report.runs[0].status.state)) == "unfinished");
  BOOST_TEST(report.runs[5].status.error == "rank 1: boom");
  BOOST_TEST(*report.runs[0].wall_s == 4.0);
  BOOST_TEST_REQUIRE(report.configs.size() == 2u);
  const auto& low = report.configs[0].values[0].second == "1e-5" ? report.configs[0] : report.configs[1];
  const auto& high = report.configs[0].values[0].second == "1e-5" ? report.configs[1] : report.configs[0];
  BOOST_TEST(*low.dev_mean == 83.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(*low.dev_std == std::sqrt(13.0), boost::test_tools::tolerance(1e-12));  // (9 + 1 + 16) / 2
  BOOST_TEST(*low.test_mean == 78.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(high.finished == 1);
  BOOST_TEST(*high.dev_mean == 90.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(!high.dev_std.has_value());  // one finished run: no std
  const std::string csv = report::format_csv(report);
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 7);
}

BOOST_AUTO_TEST_SUITE_END()
