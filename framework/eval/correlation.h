// Pearson and Spearman correlation; Spearman ranks ties by their average rank, as
// scipy.stats.spearmanr does.
#pragma once
#include <vector>

namespace angle::eval {

std::vector<double> average_ranks(const std::vector<double>& values);  // 1-based, ties averaged
double pearson(const std::vector<double>& x, const std::vector<double>& y);
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace angle::eval
