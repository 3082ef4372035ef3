#include "sweep/sweep.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"
#include "core/error.h"
#include "core/json_file.h"
#include "train/job_config.h"

namespace angle::sweep {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::string> as_arguments(const Overrides& overrides) {
  std::vector<std::string> args;
  for (const auto& [key, value] : overrides) args.insert(args.end(), {"--" + key, value});
  return args;
}

void check_key(const std::string& key, const std::string& spec) {
  ANGLE_CHECK(!key.empty() && key.find('.') != std::string::npos && key.find_first_of(" =\n") == std::string::npos,
              "'", spec, "': expected section.key=value (e.g. optim.lr=2e-5)");
  ANGLE_CHECK(key != "train.seed" && key != "run.output_dir" && key != "run.resume", "'", spec, "': ", key,
              " is set by the sweep (use --seeds for seeds)");
}

}  // namespace

std::pair<std::string, std::string> parse_setting(const std::string& spec) {
  const auto eq = spec.find('=');
  ANGLE_CHECK(eq != std::string::npos, "'", spec, "': expected section.key=value");
  const std::string key = spec.substr(0, eq), value = spec.substr(eq + 1);
  check_key(key, spec);
  ANGLE_CHECK(value.find('\n') == std::string::npos, "'", key, "': a value cannot hold a line break");
  return {key, value};
}

GridAxis parse_grid(const std::string& spec) {
  auto [key, list] = parse_setting(spec);
  GridAxis axis{key, {}};
  size_t start = 0;
  while (true) {
    const auto comma = list.find(',', start);
    axis.values.push_back(list.substr(start, comma - start));
    ANGLE_CHECK(!axis.values.back().empty(), "--grid '", spec, "': empty value (expected section.key=v1,v2,...)");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (size_t i = 0; i < axis.values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      ANGLE_CHECK(axis.values[i] != axis.values[j], "--grid '", spec, "': value '", axis.values[i], "' twice");
  return axis;
}

Sweep make_sweep(const std::string& job_file, std::vector<GridAxis> grid, Overrides fixed, int seeds) {
  ANGLE_CHECK(seeds >= 1, "--seeds must be at least 1 (got ", seeds, ")");
  for (size_t i = 0; i < grid.size(); ++i) {
    for (size_t j = 0; j < i; ++j) ANGLE_CHECK(grid[i].key != grid[j].key, "--grid ", grid[i].key, " given twice");
    for (const auto& [key, value] : fixed)
      ANGLE_CHECK(key != grid[i].key, grid[i].key, " is both swept (--grid) and fixed (--set)");
  }
  Sweep sweep{fs::absolute(job_file).lexically_normal().string(), std::move(grid), std::move(fixed), seeds, {}};
  const auto base = train::parse_job(sweep.job_file, as_arguments(sweep.fixed));
  ANGLE_CHECK(base.has_value(), "no job");
  size_t configurations = 1;
  for (const auto& axis : sweep.grid) configurations *= axis.values.size();
  const size_t total = configurations * static_cast<size_t>(seeds);
  const int width = std::max(3, static_cast<int>(std::to_string(total - 1).size()));  // run-000, run-001, ...
  for (size_t c = 0; c < configurations; ++c) {
    Overrides values;
    size_t rest = c;
    for (size_t a = sweep.grid.size(); a-- > 0;) {  // last axis fastest
      const auto& axis = sweep.grid[a];
      values.insert(values.begin(), {axis.key, axis.values[rest % axis.values.size()]});
      rest /= axis.values.size();
    }
    for (int s = 0; s < seeds; ++s) {
      SweepRun run;
      run.index = static_cast<int>(sweep.runs.size());
      run.overrides = values;
      run.seed = base->seed + static_cast<uint64_t>(s);
      char name[32];
      std::snprintf(name, sizeof name, "run-%0*d", width, run.index);
      run.output_dir = name;
      // The run's whole configuration, parsed now: a bad value fails before any run starts.
      try {
        const auto args = train_arguments(sweep, run, ".");
        train::parse_job(sweep.job_file, std::vector<std::string>(args.begin() + 2, args.end()));  // after --job J
      } catch (const Error& e) {
        ANGLE_FAIL("run ", run.index, ": ", e.what());
      }
      sweep.runs.push_back(std::move(run));
    }
  }
  return sweep;
}

std::vector<std::string> train_arguments(const Sweep& sweep, const SweepRun& run, const std::string& dir) {
  std::vector<std::string> args{"--job", sweep.job_file};
  for (const auto& a : as_arguments(sweep.fixed)) args.push_back(a);
  for (const auto& a : as_arguments(run.overrides)) args.push_back(a);
  for (const auto& a : std::vector<std::string>{"--train.seed", std::to_string(run.seed), "--run.output_dir",
                                                (fs::path(dir) / run.output_dir).lexically_normal().string(),
                                                "--run.resume", "auto"})
    args.push_back(a);
  return args;
}

namespace {

json overrides_json(const Overrides& overrides) {
  json j = json::array();
  for (const auto& [key, value] : overrides) j.push_back({key, value});
  return j;
}

Overrides overrides_from(const json& j, const std::string& path, const std::string& field) {
  Overrides out;
  if (!j.is_array()) throw_wrong_type(path, field, j.dump());
  for (const json& pair : j) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
      throw_wrong_type(path, field, pair.dump());
    out.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  }
  return out;
}

}  // namespace

void write_manifest(const Sweep& sweep, const std::string& dir) {
  json grid = json::array(), runs = json::array();
  for (const auto& axis : sweep.grid) grid.push_back({{"key", axis.key}, {"values", axis.values}});
  for (const auto& run : sweep.runs)
    runs.push_back({{"index", run.index}, {"overrides", overrides_json(run.overrides)}, {"seed", run.seed},
                    {"output_dir", run.output_dir}});
  const json manifest = {{"format", 1}, {"job", sweep.job_file}, {"grid", grid}, {"fixed", overrides_json(sweep.fixed)},
                         {"seeds", sweep.seeds}, {"runs", runs}};
  fs::create_directories(dir);
  write_atomically((fs::path(dir) / kManifestFile).string(), manifest.dump(2) + "\n");
}

Sweep read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestFile).string();
  ANGLE_CHECK(fs::exists(path), dir, ": not a sweep directory (no ", kManifestFile, ")");
  const json j = read_json_file(path);
  ANGLE_CHECK(json_field<int>(j, "format", path) == 1, path, ": format ", j["format"].dump(), " is not 1");
  Sweep sweep;
  sweep.job_file = json_field<std::string>(j, "job", path);
  sweep.seeds = json_field<int>(j, "seeds", path);
  sweep.fixed = overrides_from(json_field<json>(j, "fixed", path), path, "fixed");
  for (const json& axis : json_field<json>(j, "grid", path))
    sweep.grid.push_back({json_field<std::string>(axis, "key", path),
                          json_field<std::vector<std::string>>(axis, "values", path)});
  for (const json& row : json_field<json>(j, "runs", path)) {
    SweepRun run;
    run.index = json_field<int>(row, "index", path);
    ANGLE_CHECK(run.index == static_cast<int>(sweep.runs.size()), path, ": runs[", sweep.runs.size(), "].index is ",
                run.index);
    run.overrides = overrides_from(json_field<json>(row, "overrides", path), path, "runs[].overrides");
    run.seed = json_field<uint64_t>(row, "seed", path);
    run.output_dir = json_field<std::string>(row, "output_dir", path);
    ANGLE_CHECK(!run.output_dir.empty() && fs::path(run.output_dir).is_relative() &&
                    run.output_dir.find("..") == std::string::npos,
                path, ": runs[", run.index, "].output_dir '", run.output_dir, "' must be a directory inside the sweep");
    sweep.runs.push_back(std::move(run));
  }
  return sweep;
}

bool same_sweep(const Sweep& a, const Sweep& b) {
  auto key = [](const Sweep& s) {
    json grid = json::array(), runs = json::array();
    for (const auto& axis : s.grid) grid.push_back({axis.key, axis.values});
    for (const auto& r : s.runs) runs.push_back({r.index, overrides_json(r.overrides), r.seed, r.output_dir});
    return json{s.job_file, grid, overrides_json(s.fixed), s.seeds, runs};
  };
  return key(a) == key(b);
}

}  // namespace angle::sweep
