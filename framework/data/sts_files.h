// Readers for the STS evaluation files: STS-Benchmark csv and SICK (full SICK.txt or the
// SemEval-2014 split files, with or without header).
#pragma once
#include <string>
#include <vector>

namespace angle::data {

struct StsPairs {
  std::string name;  // e.g. "stsb", "sick"
  std::string path;
  std::vector<std::string> text1, text2;
  std::vector<double> score;
};

// Tab-separated, no quoting (the files contain raw quotes): score col 5, sentences cols 6-7.
StsPairs read_stsb(const std::string& path);
// SICK.txt (12 columns, relatedness in col 5) or SemEval files (5 columns, relatedness in col 4).
StsPairs read_sick(const std::string& path);
// "stsb:PATH" or "sick:PATH".
StsPairs read_sts_spec(const std::string& spec);
// A SemEval STS12–16 test directory as SentEval lays it out: STS.input.<subset>.txt with
// STS.gs.<subset>.txt (STS16: STS2016.input/gs.*), every subset concatenated in name order (the
// paper's "all" setting). An empty gold line means the pair is skipped.
StsPairs read_senteval_sts(const std::string& dir);

}  // namespace angle::data
