#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/text_file.h"
#include "train/job_config.h"
#include "train/run_record.h"

namespace angle::report {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// metrics.jsonl: the loss and dev curves, the last step, the training time so far. A last line
// cut by a kill is skipped; any other line that is not JSON is an error naming it.
void read_metrics(const fs::path& path, RunRow& row) {
  if (!fs::exists(path)) return;
  const auto lines = read_utf8_lines(path.string());
  for (size_t i = 0; i < lines.size(); ++i) {
    const json j = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      if (i + 1 == lines.size()) break;
      ANGLE_FAIL(path.string(), ":", i + 1, ": not a JSON object");
    }
    const std::string where = path.string() + ":" + std::to_string(i + 1);
    const long step = json_field<long>(j, "step", where);
    if (j.contains("loss")) {
      row.loss.step.push_back(static_cast<double>(step));
      row.loss.value.push_back(json_field<double>(j, "loss", where));
      row.last_step = step;
      if (j.contains("elapsed_s")) row.wall_s = json_field<double>(j, "elapsed_s", where);
    }
    if (j.contains("dev")) {
      const double dev = json_field<double>(j["dev"], "spearman", where);
      row.dev.step.push_back(static_cast<double>(step));
      row.dev.value.push_back(dev);
      if (!row.best_dev || dev > *row.best_dev) row.best_dev = dev, row.best_step = step;
    }
  }
}

std::optional<double> nested(const json& j, std::initializer_list<const char*> keys) {
  const json* at = &j;
  for (const char* key : keys) {
    if (!at->is_object() || !at->contains(key)) return std::nullopt;
    at = &(*at)[key];
  }
  return at->is_number() ? std::optional<double>(at->get<double>()) : std::nullopt;
}

RunRow read_run(const fs::path& dir) {
  RunRow row;
  row.output_dir = dir.string();
  row.status = sweep::run_status(dir.string());
  read_metrics(dir / train::kMetricsFile, row);
  const fs::path eval = dir / train::kEvalFile;
  if (fs::exists(eval)) {
    const json j = read_json_file(eval.string());
    const std::string path = eval.string();
    if (j.contains("seed")) row.seed = json_field<uint64_t>(j, "seed", path);
    if (auto v = nested(j, {"wall_s"})) row.wall_s = v;
    row.pairs_per_s = nested(j, {"pairs_per_s"});
    if (auto v = nested(j, {"best", "dev", "spearman"})) row.best_dev = v;
    if (auto v = nested(j, {"best", "step"})) row.best_step = static_cast<long>(*v);
    // the model the run keeps: best/ when there was a dev set, else final/
    row.test = nested(j, {"best", "test", "spearman"});
    if (!row.test) row.test = nested(j, {"final", "test", "spearman"});
    if (j.contains("version"))
      row.version = json_field<std::string>(j, "version", path) + " (" + json_field_or<std::string>(j, "revision", "?", path) + ")";
  }
  if (!row.seed && fs::exists(dir / "job.ini")) {
    try {  // a run of an older version, or one that has not finished: its resolved job
      std::ifstream in(dir / "job.ini");
      std::stringstream text;
      text << in.rdbuf();
      row.seed = train::parse_job_text(text.str(), (dir / "job.ini").string()).seed;
    } catch (const Error&) {
    }
  }
  return row;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double sample_std(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// Best first; rows without a score after all rows with one, in their original order.
template <typename Row, typename Score>
void sort_by(std::vector<Row>& rows, Score score) {
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    const auto sa = score(a), sb = score(b);
    if (sa.has_value() != sb.has_value()) return sa.has_value();
    return sa && *sa > *sb;
  });
}

std::string fixed(const std::optional<double>& v, int digits) {
  if (!v) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, *v);
  return text;
}

std::string value_of(const sweep::Overrides& values, const std::string& key) {
  for (const auto& [k, v] : values)
    if (k == key) return v;
  return "";
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

Report build_report(const std::vector<std::string>& paths) {
  ANGLE_CHECK(!paths.empty(), "no directory given");
  Report report;
  for (const auto& path : paths) {
    ANGLE_CHECK(fs::is_directory(path), path, ": no such directory");
    if (fs::exists(fs::path(path) / sweep::kManifestFile)) {
      const sweep::Sweep sweep = sweep::read_manifest(path);
      for (const auto& axis : sweep.grid)
        if (std::find(report.keys.begin(), report.keys.end(), axis.key) == report.keys.end())
          report.keys.push_back(axis.key);
      std::map<sweep::Overrides, size_t> config_of;
      for (const auto& run : sweep.runs) {
        RunRow row = read_run(fs::path(path) / run.output_dir);
        row.sweep_dir = path, row.index = run.index, row.values = run.overrides, row.seed = run.seed;
        auto [it, added] = config_of.emplace(run.overrides, report.configs.size());
        if (added) report.configs.push_back({path, run.overrides, 0, 0, {}, {}, {}, {}});
        report.runs.push_back(std::move(row));
      }
    } else {
      ANGLE_CHECK(fs::exists(fs::path(path) / "job.ini") || fs::exists(fs::path(path) / train::kMetricsFile), path,
                  ": neither a sweep (", sweep::kManifestFile, ") nor a run (job.ini, ", train::kMetricsFile, ")");
      report.runs.push_back(read_run(path));
    }
  }
  for (auto& config : report.configs) {
    std::vector<double> dev, test;
    for (const auto& row : report.runs) {
      if (row.sweep_dir != config.sweep_dir || row.values != config.values) continue;
      ++config.runs;
      if (row.status.state != sweep::RunState::finished) continue;
      ++config.finished;
      if (row.best_dev) dev.push_back(*row.best_dev);
      if (row.test) test.push_back(*row.test);
    }
    if (!dev.empty()) config.dev_mean = mean(dev);
    if (dev.size() > 1) config.dev_std = sample_std(dev);
    if (!test.empty()) config.test_mean = mean(test);
    if (test.size() > 1) config.test_std = sample_std(test);
  }
  sort_by(report.runs, [](const RunRow& r) { return r.best_dev ? r.best_dev : r.test; });
  sort_by(report.configs, [](const ConfigRow& c) { return c.dev_mean ? c.dev_mean : c.test_mean; });
  return report;
}

std::string format_table(const Report& report) {
  std::vector<std::string> header{"run", "state"};
  header.insert(header.end(), report.keys.begin(), report.keys.end());
  for (const char* h : {"seed", "best dev", "@step", "test", "pairs/s", "wall s", "steps", "version", "dir"})
    header.push_back(h);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : report.runs) {
    std::vector<std::string> cells{r.index >= 0 ? std::to_string(r.index) : "-", sweep::state_name(r.status.state)};
    for (const auto& key : report.keys) cells.push_back(value_of(r.values, key));
    cells.insert(cells.end(), {r.seed ? std::to_string(*r.seed) : "", fixed(r.best_dev, 2),
                               r.best_step ? std::to_string(*r.best_step) : "", fixed(r.test, 2),
                               fixed(r.pairs_per_s, 1), fixed(r.wall_s, 1),
                               r.last_step ? std::to_string(*r.last_step) : "", r.version, r.output_dir});
    rows.push_back(std::move(cells));
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < cells.size(); ++c)
      out << cells[c] << (c + 1 < cells.size() ? std::string(width[c] - cells[c].size() + 2, ' ') : "\n");
  };
  line(header);
  for (const auto& row : rows) line(row);
  for (const auto& r : report.runs)
    if (r.status.state == sweep::RunState::failed)
      out << "run " << (r.index >= 0 ? std::to_string(r.index) : r.output_dir) << " failed: " << r.status.error << "\n";
  if (!report.configs.empty()) {
    out << "\nper configuration (finished runs; mean ± sample std over seeds):\n";
    for (const auto& c : report.configs) {
      std::string name;
      for (const auto& [key, value] : c.values) {
        if (!name.empty()) name += ' ';
        name += key + "=" + value;
      }
      auto pm = [](const std::optional<double>& m, const std::optional<double>& s) {
        return m ? fixed(m, 2) + (s ? " ± " + fixed(s, 2) : "") : std::string("-");
      };
      out << "  " << (name.empty() ? "(no swept key)" : name) << "  runs " << c.finished << "/" << c.runs << "  dev "
          << pm(c.dev_mean, c.dev_std) << "  test " << pm(c.test_mean, c.test_std) << "\n";
    }
  }
  return out.str();
}

std::string format_csv(const Report& report) {
  std::ostringstream out;
  out << "sweep,index,state";
  for (const auto& key : report.keys) out << "," << csv_field(key);
  out << ",seed,best_dev_spearman,best_step,test_spearman,pairs_per_s,wall_s,last_step,version,output_dir,error\n";
  for (const auto& r : report.runs) {
    out << csv_field(r.sweep_dir) << "," << (r.index >= 0 ? std::to_string(r.index) : "") << ","
        << sweep::state_name(r.status.state);
    for (const auto& key : report.keys) out << "," << csv_field(value_of(r.values, key));
    out << "," << (r.seed ? std::to_string(*r.seed) : "") << "," << fixed(r.best_dev, 6) << ","
        << (r.best_step ? std::to_string(*r.best_step) : "") << "," << fixed(r.test, 6) << ","
        << fixed(r.pairs_per_s, 2) << "," << fixed(r.wall_s, 2) << ","
        << (r.last_step ? std::to_string(*r.last_step) : "") << "," << csv_field(r.version) << ","
        << csv_field(r.output_dir) << "," << csv_field(r.status.error) << "\n";
  }
  return out.str();
}

json to_json(const Report& report) {
  json runs = json::array(), configs = json::array();
  for (const auto& r : report.runs) {
    json values = json::object();
    for (const auto& [k, v] : r.values) values[k] = v;
    runs.push_back({{"sweep", r.sweep_dir}, {"index", r.index >= 0 ? json(r.index) : json(nullptr)},
                    {"state", sweep::state_name(r.status.state)}, {"error", r.status.error}, {"values", values},
                    {"seed", r.seed ? json(*r.seed) : json(nullptr)}, {"best_dev_spearman", optional_json(r.best_dev)},
                    {"best_step", r.best_step ? json(*r.best_step) : json(nullptr)},
                    {"test_spearman", optional_json(r.test)}, {"pairs_per_s", optional_json(r.pairs_per_s)},
                    {"wall_s", optional_json(r.wall_s)}, {"last_step", r.last_step ? json(*r.last_step) : json(nullptr)},
                    {"version", r.version}, {"output_dir", r.output_dir}});
  }
  for (const auto& c : report.configs) {
    json values = json::object();
    for (const auto& [k, v] : c.values) values[k] = v;
    configs.push_back({{"sweep", c.sweep_dir}, {"values", values}, {"runs", c.runs}, {"finished", c.finished},
                       {"dev_mean", optional_json(c.dev_mean)}, {"dev_std", optional_json(c.dev_std)},
                       {"test_mean", optional_json(c.test_mean)}, {"test_std", optional_json(c.test_std)}});
  }
  return {{"keys", report.keys}, {"runs", runs}, {"configurations", configs}};
}

}  // namespace angle::report
