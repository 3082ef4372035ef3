#include "eval/sts_suite.h"

#include <filesystem>

namespace angle::eval {
namespace fs = std::filesystem;

std::vector<SuiteSet> read_sts_suite(const std::string& data_dir) {
  const fs::path root(data_dir);
  std::vector<SuiteSet> sets;
  for (int year = 12; year <= 16; ++year) {
    fs::path dir = root / "STS" / ("STS" + std::to_string(year) + "-en-test");
    SuiteSet set{"STS" + std::to_string(year), dir.string(), std::nullopt};
    if (fs::is_directory(dir)) set.pairs = data::read_senteval_sts(dir.string());
    sets.push_back(std::move(set));
  }
  fs::path stsb = root / "STS" / "STSBenchmark" / "sts-test.csv";
  sets.push_back({"STS-B", stsb.string(), fs::exists(stsb) ? std::optional(data::read_stsb(stsb.string())) : std::nullopt});
  SuiteSet sick{"SICK-R", (root / "SICK" / "SICK_test_annotated.txt").string(), std::nullopt};
  for (fs::path candidate : {root / "SICK" / "SICK_test_annotated.txt",
                             root / "SICK" / "semeval2014_task1_noheader" / "SICK_test_annotated.txt"})
    if (fs::exists(candidate)) {
      sick.location = candidate.string();
      sick.pairs = data::read_sick(candidate.string());
      break;
    }
  sets.push_back(std::move(sick));
  return sets;
}

}  // namespace angle::eval
