#include "data/sts_files.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <algorithm>

#include "core/error.h"
#include "core/text_file.h"

namespace angle::data {
namespace {

double parse_score(const std::string& field, const std::string& path, size_t line, const char* column) {
  char* end = nullptr;
  double value = std::strtod(field.c_str(), &end);
  while (end && (*end == ' ' || *end == '\t')) ++end;
  ANGLE_CHECK(!field.empty() && end && *end == '\0' && std::isfinite(value), path, ":", line, ": ", column,
              " '", field, "' is not a number");
  return value;
}

}  // namespace

StsPairs read_stsb(const std::string& path) {
  StsPairs pairs{"stsb", path, {}, {}, {}};
  auto lines = read_utf8_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto fields = split(lines[i], '\t');
    ANGLE_CHECK(fields.size() >= 7, path, ":", i + 1, ": expected at least 7 tab-separated columns, found ",
                fields.size());
    double score = parse_score(fields[4], path, i + 1, "score (column 5)");
    ANGLE_CHECK(score >= 0 && score <= 5, path, ":", i + 1, ": score ", score, " outside [0, 5]");
    pairs.score.push_back(score);
    pairs.text1.push_back(fields[5]);
    pairs.text2.push_back(fields[6]);
  }
  return pairs;
}

StsPairs read_sick(const std::string& path) {
  StsPairs pairs{"sick", path, {}, {}, {}};
  auto lines = read_utf8_lines(path);
  size_t columns = split(lines[0], '\t').size();
  ANGLE_CHECK(columns == 12 || columns == 5, path, ":1: expected 12 columns (SICK.txt) or 5 (SemEval split), found ",
              columns);
  const size_t score_column = columns == 12 ? 4 : 3;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto fields = split(lines[i], '\t');
    if (i == 0 && fields[0] == "pair_ID") continue;  // header
    ANGLE_CHECK(fields.size() == columns, path, ":", i + 1, ": expected ", columns, " columns, found ", fields.size());
    double score = parse_score(fields[score_column], path, i + 1, "relatedness_score");
    ANGLE_CHECK(score >= 1 && score <= 5, path, ":", i + 1, ": relatedness ", score, " outside [1, 5]");
    pairs.score.push_back(score);
    pairs.text1.push_back(fields[1]);
    pairs.text2.push_back(fields[2]);
  }
  ANGLE_CHECK(!pairs.score.empty(), path, ": no pairs (only a header)");
  return pairs;
}

StsPairs read_senteval_sts(const std::string& dir) {
  namespace fs = std::filesystem;
  ANGLE_CHECK(fs::is_directory(dir), dir, ": not a directory");
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if ((name.rfind("STS.input.", 0) == 0 || name.rfind("STS2016.input.", 0) == 0) && name.ends_with(".txt"))
      inputs.push_back(entry.path());
  }
  ANGLE_CHECK(!inputs.empty(), dir, ": no STS.input.<subset>.txt files");
  std::sort(inputs.begin(), inputs.end());
  StsPairs pairs{fs::path(dir).filename().string(), dir, {}, {}, {}};
  for (const fs::path& input : inputs) {
    std::string gold_name = input.filename().string();
    gold_name.replace(gold_name.find(".input."), 7, ".gs.");
    const std::string gold_path = (input.parent_path() / gold_name).string();
    ANGLE_CHECK(fs::exists(gold_path), input.string(), ": gold file ", gold_path, " is missing");
    auto lines = read_utf8_lines(input.string());
    auto gold = read_utf8_lines(gold_path);
    ANGLE_CHECK(lines.size() == gold.size(), input.string(), " has ", lines.size(), " lines but ", gold_path, " has ",
                gold.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      if (gold[i].find_first_not_of(" \t") == std::string::npos) continue;  // no gold score: not evaluated
      auto fields = split(lines[i], '\t');
      ANGLE_CHECK(fields.size() >= 2, input.string(), ":", i + 1, ": expected two tab-separated sentences");
      double score = parse_score(gold[i], gold_path, i + 1, "gold score");
      ANGLE_CHECK(score >= 0 && score <= 5, gold_path, ":", i + 1, ": score ", score, " outside [0, 5]");
      pairs.text1.push_back(fields[0]);
      pairs.text2.push_back(fields[1]);
      pairs.score.push_back(score);
    }
  }
  return pairs;
}

StsPairs read_sts_spec(const std::string& spec) {
  auto colon = spec.find(':');
  ANGLE_CHECK(colon != std::string::npos, "--data '", spec, "': expected FORMAT:PATH with FORMAT stsb or sick");
  std::string format = spec.substr(0, colon), path = spec.substr(colon + 1);
  if (format == "stsb") return read_stsb(path);
  if (format == "sick") return read_sick(path);
  ANGLE_FAIL("--data '", spec, "': unknown format '", format, "' (stsb or sick)");
}

}  // namespace angle::data
