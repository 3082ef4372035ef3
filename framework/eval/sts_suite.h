// The paper's transfer-STS table (reference §5.1): STS12–16 in the "all" setting, STS-B test and
// SICK-R test, read from a SentEval-style data directory.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "data/sts_files.h"

namespace angle::eval {

struct SuiteSet {
  std::string name;                      // STS12 ... SICK-R
  std::string location;                  // where it was looked for
  std::optional<data::StsPairs> pairs;   // nullopt when absent from the directory
};

// DIR/STS/STS1{2..6}-en-test/, DIR/STS/STSBenchmark/sts-test.csv, DIR/SICK/SICK_test_annotated.txt
// (or DIR/SICK/semeval2014_task1_noheader/SICK_test_annotated.txt).
std::vector<SuiteSet> read_sts_suite(const std::string& data_dir);

}  // namespace angle::eval
