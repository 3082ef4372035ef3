// What a run directory says about its run (train/run_record.h, train/run_metrics.h): a run is
// finished once FINISHED exists, which write_run_result writes after eval.json; eval.json alone
// means finished only for the builds before the marker (no "format" key); a resumed run keeps
// the metrics lines up to its checkpoint.
#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "core/text_file.h"
#include "tiny_model.h"
#include "train/run_metrics.h"
#include "train/run_record.h"

using namespace angle;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(run_record)

BOOST_AUTO_TEST_CASE(finished_means_the_marker_or_an_earlier_builds_eval_json) {
  testing::TempDir dir;
  const std::string run = dir.path.string();
  BOOST_TEST(!train::run_finished(run));
  testing::write_text(dir.file(train::kEvalFile), "{\"format\": 2, \"steps\": 3}\n");
  BOOST_TEST(!train::run_finished(run));  // eval.json of this build without FINISHED: cut short
  testing::write_text(dir.file(train::kEvalFile), "{\"steps\": 3");
  BOOST_TEST(!train::run_finished(run));  // a cut eval.json
  testing::write_text(dir.file(train::kEvalFile), "{\"steps\": 3}\n");
  BOOST_TEST(train::run_finished(run));  // an earlier build's: eval.json was its last write
  fs::remove(dir.file(train::kEvalFile));
  train::write_run_result(run, {{"format", train::kEvalFormat}, {"steps", 5}}, 5);
  BOOST_TEST(train::run_finished(run));
  BOOST_TEST(testing::read_text(dir.file(train::kFinishedFile)) == "step 5\n");
  BOOST_TEST(testing::read_text(dir.file(train::kEvalFile)).find("\"format\": 2") != std::string::npos);
  for (const auto& entry : fs::directory_iterator(dir.path))  // no temporary file left behind
    BOOST_TEST(entry.path().filename().string().find(".tmp") == std::string::npos, entry.path().string());
}

BOOST_AUTO_TEST_CASE(a_resumed_run_keeps_the_metrics_up_to_its_checkpoint) {
  testing::TempDir dir;
  const std::string path = dir.file(train::kMetricsFile);
  testing::write_text(path, "{\"step\":1,\"loss\":3,\"elapsed_s\":1.5}\n{\"step\":2,\"dev\":{\"spearman\":70}}\n"
                            "{\"step\":2,\"loss\":2,\"elapsed_s\":2.5}\n{\"step\":3,\"loss\":1,\"elapsed_s\":4}\n"
                            "{\"step\":4,\"lo");
  BOOST_TEST(train::keep_metrics_until(path, 2) == 2.5);
  BOOST_TEST(testing::read_text(path) == "{\"step\":1,\"loss\":3,\"elapsed_s\":1.5}\n{\"step\":2,\"dev\":{\"spearman\":70}}\n"
                                         "{\"step\":2,\"loss\":2,\"elapsed_s\":2.5}\n");
  BOOST_TEST(train::keep_metrics_until(dir.file("absent.jsonl"), 2) == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
