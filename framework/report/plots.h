// Pictures of a report, drawn by gnuplot (Debian's gnuplot-nox) as PNG: loss.png and dev.png
// (one curve per run) and score-vs-<key>.png (each finished run's best dev Spearman, or its test
// Spearman without a dev set, against each swept key, with the mean per value). The gnuplot
// scripts and their data stay beside the pictures, to restyle them.
#pragma once
#include <string>
#include <vector>

#include "report/report.h"

namespace angle::report {

struct Plots {
  std::vector<std::string> pictures;  // written
  std::string problem;                // why some were not ("" when all were)
};

Plots write_plots(const Report& report, const std::string& dir);

}  // namespace angle::report
