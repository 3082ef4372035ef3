#include "report/plots.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/subprocess.h"

namespace angle::report {
namespace fs = std::filesystem;

namespace {

// A gnuplot single-quoted string ('' is a quote inside one).
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string run_label(const RunRow& row) {
  std::string label = row.index >= 0 ? "run " + std::to_string(row.index) : fs::path(row.output_dir).filename().string();
  for (const auto& [key, value] : row.values) {
    label += ' ';
    label += key.substr(key.find('.') + 1) + "=" + value;  // optim.lr -> lr
  }
  if (row.seed) label += " seed " + std::to_string(*row.seed);
  return label;
}

std::string header(const std::string& picture, const std::string& title, const std::string& x, const std::string& y) {
  return "set terminal pngcairo noenhanced size 960,600 font ',10'\nset output " + quoted(picture) +
         "\nset title " + quoted(title) + "\nset xlabel " + quoted(x) + "\nset ylabel " + quoted(y) +
         "\nset grid\nset key outside right top\n";
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  ANGLE_CHECK(out.good(), path.string(), ": cannot write");
}

// One curve per run that has points: returns the script, or "" when no run has any.
std::string curves(const Report& report, const fs::path& dir, const std::string& name, const std::string& title,
                   const std::string& y, Curve RunRow::*curve) {
  std::vector<std::string> plots;
  for (size_t i = 0; i < report.runs.size(); ++i) {
    const Curve& c = report.runs[i].*curve;
    if (c.step.empty()) continue;
    const fs::path data = dir / "data" / (name + "-" + std::to_string(i) + ".dat");
    std::ostringstream text;
    for (size_t k = 0; k < c.step.size(); ++k) text << c.step[k] << " " << c.value[k] << "\n";
    write_file(data, text.str());
    plots.push_back(quoted(data.string()) + " using 1:2 with lines title " + quoted(run_label(report.runs[i])));
  }
  if (plots.empty()) return "";
  std::string script = header((dir / (name + ".png")).string(), title, "step", y) + "plot ";
  for (size_t i = 0; i < plots.size(); ++i) {
    if (i) script += ", \\\n     ";
    script += plots[i];
  }
  return script + "\n";
}

bool numeric(const std::string& text, double& value) {
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

// Each finished run's score against the value of `key`, and the mean per value.
std::string score_against(const Report& report, const fs::path& dir, const std::string& key) {
  bool any_dev = false;
  for (const auto& r : report.runs) any_dev |= r.status.state == sweep::RunState::finished && r.best_dev.has_value();
  std::vector<std::string> order;  // values in first-seen order (the grid's)
  std::map<std::string, std::vector<double>> scores;
  for (const auto& r : report.runs) {
    const auto score = any_dev ? r.best_dev : r.test;
    const auto it = std::find_if(r.values.begin(), r.values.end(), [&](const auto& kv) { return kv.first == key; });
    if (r.status.state != sweep::RunState::finished || !score || it == r.values.end()) continue;
    if (!scores.count(it->second)) order.push_back(it->second);
    scores[it->second].push_back(*score);
  }
  if (order.empty()) return "";
  bool all_numeric = true;
  double low = 1e300, high = -1e300;
  for (const auto& v : order) {
    double x;
    all_numeric &= numeric(v, x);
    if (all_numeric) low = std::min(low, x), high = std::max(high, x);
  }
  if (!all_numeric) std::sort(order.begin(), order.end());
  std::ostringstream points, means, xtics;
  for (size_t i = 0; i < order.size(); ++i) {
    double x = static_cast<double>(i);
    if (all_numeric) numeric(order[i], x);
    else xtics << (i ? ", " : "") << quoted(order[i]) << " " << i;
    double sum = 0;
    for (double s : scores[order[i]]) points << x << " " << s << "\n", sum += s;
    means << x << " " << sum / static_cast<double>(scores[order[i]].size()) << "\n";
  }
  if (all_numeric) {  // means in x order, for the line through them
    std::vector<std::pair<double, double>> sorted;
    std::istringstream in(means.str());
    for (double x, y; in >> x >> y;) sorted.emplace_back(x, y);
    std::sort(sorted.begin(), sorted.end());
    means.str("");
    for (const auto& [x, y] : sorted) means << x << " " << y << "\n";
  }
  const std::string stem = "score-vs-" + key;
  const fs::path points_file = dir / "data" / (stem + ".points.dat"), means_file = dir / "data" / (stem + ".means.dat");
  write_file(points_file, points.str());
  write_file(means_file, means.str());
  const std::string y = any_dev ? "best dev Spearman" : "test Spearman";
  std::string script = header((dir / (stem + ".png")).string(), y + " against " + key, key, y);
  if (all_numeric && low > 0 && high / low >= 10) script += "set logscale x\n";
  if (!all_numeric) script += "set xtics (" + xtics.str() + ")\nset xrange [-0.5:" + std::to_string(order.size() - 0.5) + "]\n";
  else script += "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n";
  return script + "plot " + quoted(points_file.string()) + " using 1:2 with points pointtype 7 pointsize 1.5 title 'runs', " +
         quoted(means_file.string()) + " using 1:2 with linespoints linewidth 2 title 'mean over seeds'\n";
}

}  // namespace

Plots write_plots(const Report& report, const std::string& out_dir) {
  const fs::path dir = fs::absolute(out_dir);
  fs::create_directories(dir / "data");
  std::vector<std::pair<std::string, std::string>> scripts;  // name, text
  scripts.emplace_back("loss", curves(report, dir, "loss", "training loss", "loss", &RunRow::loss));
  scripts.emplace_back("dev", curves(report, dir, "dev", "dev Spearman", "Spearman", &RunRow::dev));
  for (const auto& key : report.keys) scripts.emplace_back("score-vs-" + key, score_against(report, dir, key));
  Plots plots;
  for (const auto& [name, text] : scripts) {
    if (text.empty()) continue;
    const fs::path script = dir / (name + ".gp");
    write_file(script, text);
    std::string ignored;
    const int status = run_captured({"gnuplot", script.string()}, ignored);
    if (exited_zero(status)) {
      plots.pictures.push_back((dir / (name + ".png")).string());
    } else {
      plots.problem = "gnuplot " + exit_text(status) + (exit_text(status) == "exit 127" ? " (not installed? apt-get install gnuplot-nox)" : "") +
                      ": the scripts are in " + dir.string();
    }
  }
  return plots;
}

}  // namespace angle::report
