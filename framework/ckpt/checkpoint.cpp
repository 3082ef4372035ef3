#include "ckpt/checkpoint.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "ckpt/generator_states.h"
#include "core/atomic_output.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "model/safetensors.h"

namespace angle::ckpt {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_synced(const fs::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.flush();
    ANGLE_CHECK(out.good(), path.string(), ": write failed (disk full?)");
  }
  fsync_path(path);
}

// sha256 hex (64 chars) <-> 4 int64 words, so that ranks can exchange checksums as a tensor.
at::Tensor hex_to_words(const std::string& hex) {
  at::Tensor words = at::zeros({1, 4}, at::kLong);
  for (int w = 0; w < 4; ++w) words[0][w] = static_cast<int64_t>(std::stoull(hex.substr(16 * w, 16), nullptr, 16));
  return words;
}
std::string words_to_hex(const at::Tensor& words) {
  std::string hex;
  char buffer[17];
  for (int w = 0; w < 4; ++w) {
    std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(words[w].item<int64_t>()));
    hex += buffer;
  }
  return hex;
}

// Deletes a directory without ever leaving a half-deleted one under a checkpoint's name: it is
// renamed out of the way first (rename is atomic), then removed.
void remove_checkpoint_dir(const fs::path& dir) {
  if (!fs::exists(dir)) return;
  const fs::path doomed = dir.string() + ".deleting";
  fs::remove_all(doomed);
  fs::rename(dir, doomed);
  fs::remove_all(doomed);
}

long step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind("step-", 0) != 0 || name.find('.') != std::string::npos) return -1;
  try {
    return std::stol(name.substr(5));
  } catch (...) {
    return -1;
  }
}

// Why `dir` is not a usable checkpoint ("" when it is): COMPLETE marker, manifest, shard files
// and their checksums.
std::string problem_with(const fs::path& dir) {
  if (!fs::exists(dir / "COMPLETE")) return "no COMPLETE marker (interrupted while writing)";
  if (!fs::exists(dir / "manifest.json")) return "manifest.json is missing";
  Manifest manifest;
  try {
    manifest = read_manifest((dir / "manifest.json").string());
  } catch (const Error& e) {
    return e.what();
  }
  if (manifest.format_version > kFormatVersion) return "";  // reported as an error by the reader
  for (const ShardRecord& shard : manifest.shards) {
    const fs::path file = dir / shard.file;
    if (!fs::exists(file)) return "shard " + shard.file + " is missing";
    if (sha256_file(file.string()) != shard.sha256) return "shard " + shard.file + " fails its checksum";
  }
  return "";
}

// The manifest of a usable checkpoint, of a format this build reads.
Manifest usable_manifest(const fs::path& dir) {
  const std::string where = (dir / "manifest.json").string();
  Manifest manifest = read_manifest(where);
  ANGLE_CHECK(manifest.format_version <= kFormatVersion, where, ": format version ", manifest.format_version,
              " is newer than this build of angle supports (", kFormatVersion, ")");
  return manifest;
}

// Where each element of the global flat space sits in the saved shards.
struct Segment {
  int rank;
  int64_t begin, size, local;  // global [begin, begin + size) = the rank's tensors at [local, local + size)
};
std::vector<Segment> segments_of(const Manifest& manifest) {
  std::vector<Segment> out;
  for (const ShardRecord& shard : manifest.shards) {
    if (shard.has_ranges) {
      int64_t local = 0;
      for (const auto& [begin, size] : shard.ranges) {
        out.push_back({shard.rank, begin, size, local});
        local += size;
      }
    } else {  // format 1: equal slices of the padded space (the last ones reach past numel)
      const int64_t begin = manifest.shard_size > 0 && shard.rank <= manifest.numel / manifest.shard_size
                                ? manifest.shard_size * shard.rank
                                : manifest.numel;
      out.push_back({shard.rank, begin, manifest.shard_size, 0});
    }
  }
  return out;
}

}  // namespace

void save(const std::string& output_dir, const TrainingState& state, shard::ShardedModel& sharded, comm::Comm& comm,
          int keep_last, const TestHooks* hooks) {
  const int rank = comm.rank(), world = comm.size();
  const fs::path root(output_dir), final_dir = root / ("step-" + std::to_string(state.step));
  const fs::path tmp = root / ("step-" + std::to_string(state.step) + ".tmp");
  if (rank == 0) {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }
  comm.barrier();
  const fs::path shard_file = tmp / shard_name(rank, world);
  std::map<std::string, at::Tensor> tensors = generator_states(sharded.device());
  tensors.insert({{"params", sharded.owned("params").cpu()}, {"exp_avg", sharded.owned("exp_avg").cpu()},
                  {"exp_avg_sq", sharded.owned("exp_avg_sq").cpu()}});
  model::write_safetensors(shard_file.string(), tensors,
                           {{"rank", std::to_string(rank)}, {"world_size", std::to_string(world)}});
  fsync_path(shard_file);
  if (hooks) hooks->fail_at(rank, TestHooks::Point::kSave);
  at::Tensor sums = comm.all_gather_rows(hex_to_words(sha256_file(shard_file.string())).to(comm.device())).cpu();
  // Every rank's ranges of the global flat space, as rows of (begin, size).
  std::vector<int64_t> mine;
  for (const auto& range : sharded.owned_ranges()) mine.push_back(range.begin), mine.push_back(range.size);
  std::vector<int64_t> counts;
  at::Tensor ranges = comm.all_gather_rows(at::tensor(mine, at::kLong).view({-1, 2}).to(comm.device()), &counts).cpu();
  if (rank == 0) {
    json shards = json::array();
    for (int r = 0, row = 0; r < world; ++r) {
      json own = json::array();
      for (int64_t k = 0; k < counts[r]; ++k, ++row)
        own.push_back({ranges[row][0].item<int64_t>(), ranges[row][1].item<int64_t>()});
      shards.push_back({{"file", shard_name(r, world)}, {"rank", r}, {"ranges", own}, {"sha256", words_to_hex(sums[r])}});
    }
    json layout = json::array();
    for (const auto& entry : sharded.layout())
      layout.push_back({{"name", entry.name}, {"shape", entry.shape}, {"offset", entry.offset}});
    json manifest = {{"format_version", kFormatVersion}, {"step", state.step}, {"cursor", state.cursor},
                     {"optimizer_steps", sharded.steps_taken()}, {"world_size", world},
                     {"numel", sharded.numel()},
                     {"tensors", {"params", "exp_avg", "exp_avg_sq"}}, {"layout", layout}, {"shards", shards},
                     {"job_hash", std::to_string(state.job_hash)}, {"job", state.job},
                     {"best_dev", state.best_dev}, {"best_step", state.best_step}};
    write_synced(tmp / "manifest.json", manifest.dump(2) + "\n");
    write_synced(tmp / "COMPLETE", "step " + std::to_string(state.step) + "\n");
    fsync_path(tmp);
    remove_checkpoint_dir(final_dir);
    fs::rename(tmp, final_dir);
    const fs::path link_tmp = root / "latest.tmp";
    fs::remove(link_tmp);
    fs::create_directory_symlink(final_dir.filename(), link_tmp);
    fs::rename(link_tmp, root / "latest");
    fsync_path(root);
    std::vector<std::pair<long, fs::path>> complete;
    for (const auto& entry : fs::directory_iterator(root))
      if (long s = step_of(entry.path()); s >= 0 && fs::exists(entry.path() / "COMPLETE")) complete.emplace_back(s, entry.path());
    std::sort(complete.begin(), complete.end());
    for (size_t i = 0; keep_last > 0 && i + static_cast<size_t>(keep_last) < complete.size(); ++i)
      remove_checkpoint_dir(complete[i].second);
  }
  comm.barrier();
}

namespace {

// Collective: the checkpoint to resume from, or nullopt when `auto` finds none. Rank 0 checks
// the candidates (newest first; checksums included) and tells the others which one it chose.
std::optional<fs::path> choose_checkpoint(const std::string& output_dir, const ResumeOptions& options, comm::Comm& comm) {
  std::vector<fs::path> candidates;
  if (options.spec == "auto") {
    if (fs::is_directory(output_dir))
      for (const auto& entry : fs::directory_iterator(output_dir))
        if (step_of(entry.path()) >= 0) candidates.push_back(entry.path());
    std::sort(candidates.begin(), candidates.end(), [](auto& a, auto& b) { return step_of(a) > step_of(b); });
  } else {
    ANGLE_CHECK(fs::is_directory(options.spec), options.spec, ": no such checkpoint directory");
    candidates.push_back(options.spec);
  }
  at::Tensor choice = at::full({1}, -1, at::kLong);
  if (comm.rank() == 0)
    for (size_t i = 0; i < candidates.size(); ++i) {
      std::string problem = problem_with(candidates[i]);
      if (problem.empty()) {
        choice[0] = static_cast<int64_t>(i);
        break;
      }
      ANGLE_CHECK(options.spec == "auto", candidates[i].string(), ": not a usable checkpoint: ", problem);
      log_info("warning: skipping checkpoint " + candidates[i].string() + ": " + problem);
    }
  at::Tensor on_device = choice.to(comm.device());
  comm.broadcast(on_device, 0);
  const int64_t chosen = on_device.cpu()[0].item<int64_t>();
  if (chosen < 0) return std::nullopt;
  return candidates[static_cast<size_t>(chosen)];
}

}  // namespace

std::optional<TrainingState> resume(const std::string& output_dir, const ResumeOptions& options, uint64_t job_hash,
                                    shard::ShardedModel& sharded, comm::Comm& comm) {
  const std::optional<fs::path> chosen = choose_checkpoint(output_dir, options, comm);
  if (!chosen) return std::nullopt;
  const fs::path dir = *chosen;
  const std::string where = (dir / "manifest.json").string();
  const Manifest manifest = usable_manifest(dir);
  ANGLE_CHECK(manifest.numel == sharded.numel(), where, ": checkpoint has ", manifest.numel,
              " parameters but the model has ", sharded.numel(), " (a checkpoint of a different model)");
  ANGLE_CHECK(options.allow_job_change || manifest.job_hash == std::to_string(job_hash), where,
              ": written by a different job configuration (hash ", manifest.job_hash, " vs ", job_hash,
              "); pass --run.allow_job_change true to resume anyway");

  const int old_world = manifest.world_size;
  const std::vector<Segment> segments = segments_of(manifest);
  std::map<int, std::unique_ptr<model::SafetensorsFile>> files;
  std::map<std::pair<int, std::string>, at::Tensor> loaded;
  auto tensor_of = [&](int r, const std::string& name) -> const at::Tensor& {
    auto key = std::make_pair(r, name);
    if (!loaded.count(key)) {
      if (!files.count(r)) files[r] = std::make_unique<model::SafetensorsFile>((dir / shard_name(r, old_world)).string());
      loaded[key] = files[r]->load(name);
      int64_t expected = 0;
      for (const Segment& s : segments) expected += s.rank == r ? s.size : 0;
      ANGLE_CHECK(loaded[key].numel() == expected, files[r]->path(), ": tensor '", name, "' has ", loaded[key].numel(),
                  " elements, the manifest's ranges say ", expected);
    }
    return loaded[key];
  };
  // [begin, end) of a saved flat tensor, stitched from the saved ranges that overlap it.
  auto read = [&](const std::string& name, int64_t begin, int64_t end) {
    std::vector<at::Tensor> parts;
    for (const Segment& s : segments) {
      const int64_t from = std::max(begin, s.begin), to = std::min(end, s.begin + s.size);
      if (from < to) parts.push_back(tensor_of(s.rank, name).narrow(0, s.local + from - s.begin, to - from));
    }
    at::Tensor out = at::cat(parts);
    ANGLE_CHECK(out.numel() == end - begin, where, ": the shards' ranges do not cover [", begin, ", ", end, ")");
    return out.to(sharded.device());
  };
  sharded.restore(read, manifest.optimizer_steps);
  if (old_world == comm.size()) {  // each rank its own generators (ckpt/generator_states.h)
    model::SafetensorsFile own((dir / shard_name(comm.rank(), old_world)).string());
    std::map<std::string, at::Tensor> saved;
    for (const char* name : {"rng", "rng_cuda"})
      if (own.contains(name)) saved[name] = own.load(name);
    restore_generator_states(saved, sharded.device());
  }
  TrainingState state;
  state.step = manifest.step;
  state.cursor = manifest.cursor;
  state.job = manifest.job;
  state.job_hash = job_hash;
  state.best_dev = manifest.best_dev;
  state.best_step = manifest.best_step;
  if (comm.rank() == 0)
    log_info("resumed from " + dir.string() + " (step " + std::to_string(state.step) + ", written by " +
             std::to_string(old_world) + " rank(s), now " + std::to_string(comm.size()) + ")");
  return state;
}

FullCheckpoint read_full(const std::string& dir_name) {
  const fs::path dir(dir_name);
  std::string problem = problem_with(dir);
  ANGLE_CHECK(problem.empty(), dir_name, ": not a usable checkpoint: ", problem);
  const Manifest manifest = usable_manifest(dir);
  const std::string where = dir_name + "/manifest.json";
  std::vector<Segment> segments = segments_of(manifest);
  // The shards first: the parameters are allocated only once the ranges are known to tile them
  // and every range is backed by its shard's tensor (a manifest cannot ask for more memory than
  // its shard files hold).
  std::map<int, at::Tensor> params;
  for (const Segment& s : segments)
    if (!params.count(s.rank))
      params[s.rank] = model::SafetensorsFile((dir / shard_name(s.rank, manifest.world_size)).string()).load("params");
  std::sort(segments.begin(), segments.end(), [](const Segment& a, const Segment& b) { return a.begin < b.begin; });
  int64_t covered = 0;
  for (Segment& s : segments) {
    s.size = std::min(s.size, manifest.numel - s.begin);  // format 1: the padding past numel
    if (s.size == 0) continue;
    ANGLE_CHECK(s.begin == covered, where, ": the shards' ranges ", s.begin < covered ? "overlap" : "leave a gap",
                " at parameter ", std::min(s.begin, covered));
    ANGLE_CHECK(s.local <= params[s.rank].numel() && s.size <= params[s.rank].numel() - s.local, dir_name,
                ": shard of rank ", s.rank, " is shorter than its ranges");
    covered += s.size;
  }
  ANGLE_CHECK(covered == manifest.numel, where, ": the shards' ranges cover ", covered, " of ", manifest.numel,
              " parameters");
  FullCheckpoint full;
  full.parameters = at::zeros({manifest.numel}, at::kFloat);
  for (const Segment& s : segments)
    if (s.size > 0) full.parameters.narrow(0, s.begin, s.size).copy_(params[s.rank].narrow(0, s.local, s.size));
  full.job = manifest.job;
  full.step = manifest.step;
  for (const LayoutRecord& entry : manifest.layout) full.layout[entry.name] = {entry.offset, entry.shape};
  return full;
}

}  // namespace angle::ckpt
