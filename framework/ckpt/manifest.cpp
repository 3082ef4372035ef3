#include "ckpt/manifest.h"

#include "core/error.h"
#include "core/json_file.h"

namespace angle::ckpt {
using nlohmann::json;

std::string shard_name(int rank, int world) {
  return "shard-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".safetensors";
}

namespace {

// a[i] as a field of its own: "shards[3].ranges[1]"
std::string at(const std::string& field, size_t i) { return field + "[" + std::to_string(i) + "]"; }

const json& array_field(const json& j, const std::string& key, const std::string& path) {
  const auto it = j.find(key);
  if (it == j.end()) throw_missing_field(path, key);
  if (!it->is_array()) throw_wrong_type(path, key, it->dump());
  return *it;
}

int64_t nonnegative(int64_t value, const std::string& path, const std::string& field) {
  ANGLE_CHECK(value >= 0, path, ": ", field, " is negative (", value, ")");
  return value;
}

}  // namespace

Manifest parse_manifest(const json& j, const std::string& path) {
  ANGLE_CHECK(j.is_object(), path, ": not a JSON object");
  Manifest m;
  m.format_version = json_field_or<int>(j, "format_version", 1, path);
  if (m.format_version > kFormatVersion) return m;
  ANGLE_CHECK(m.format_version >= 1, path, ": format_version ", m.format_version, " is not a format");
  m.world_size = json_field<int>(j, "world_size", path);
  ANGLE_CHECK(m.world_size >= 1 && m.world_size <= (1 << 20), path, ": world_size ", m.world_size, " is out of range");
  m.numel = nonnegative(json_field<int64_t>(j, "numel", path), path, "numel");
  m.step = nonnegative(json_field<long>(j, "step", path), path, "step");
  m.cursor = json_field<uint64_t>(j, "cursor", path);
  m.optimizer_steps = nonnegative(json_field_or<int64_t>(j, "optimizer_steps", 0, path), path, "optimizer_steps");
  m.shard_size = nonnegative(json_field_or<int64_t>(j, "shard_size", 0, path), path, "shard_size");
  m.job = json_field_or<std::string>(j, "job", "", path);
  m.job_hash = json_field_or<std::string>(j, "job_hash", "", path);
  m.best_dev = json_field_or<double>(j, "best_dev", -1e9, path);
  m.best_step = json_field_or<long>(j, "best_step", 0, path);

  const json& shards = array_field(j, "shards", path);
  std::vector<bool> seen(static_cast<size_t>(m.world_size), false);
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string where = path + " " + at("shards", i);
    ShardRecord shard;
    shard.rank = json_field<int>(shards[i], "rank", where);
    ANGLE_CHECK(shard.rank >= 0 && shard.rank < m.world_size, where, ": rank ", shard.rank, " outside the world of ",
                m.world_size);
    ANGLE_CHECK(!seen[static_cast<size_t>(shard.rank)], where, ": rank ", shard.rank, " has two shards");
    seen[static_cast<size_t>(shard.rank)] = true;
    shard.file = json_field<std::string>(shards[i], "file", where);
    ANGLE_CHECK(shard.file == shard_name(shard.rank, m.world_size), where, ": file '", shard.file.substr(0, 80),
                "' is not ", shard_name(shard.rank, m.world_size));
    shard.sha256 = json_field<std::string>(shards[i], "sha256", where);
    ANGLE_CHECK(shard.sha256.size() == 64 && shard.sha256.find_first_not_of("0123456789abcdef") == std::string::npos,
                where, ": sha256 is not 64 lower-case hex digits");
    shard.has_ranges = shards[i].contains("ranges");
    if (shard.has_ranges) {
      const json& ranges = array_field(shards[i], "ranges", where);
      for (size_t k = 0; k < ranges.size(); ++k) {
        ANGLE_CHECK(ranges[k].is_array() && ranges[k].size() == 2 && fits_integer<int64_t>(ranges[k][0]) &&
                        fits_integer<int64_t>(ranges[k][1]),
                    where, ": ", at("ranges", k), " is not [begin, size]");
        const int64_t begin = ranges[k][0].get<int64_t>(), size = ranges[k][1].get<int64_t>();
        ANGLE_CHECK(begin >= 0 && size >= 0 && begin <= m.numel && size <= m.numel - begin, where, ": ",
                    at("ranges", k), " [", begin, ", +", size, ") outside the ", m.numel, " parameters");
        shard.ranges.emplace_back(begin, size);
      }
    }
    m.shards.push_back(std::move(shard));
  }
  const auto layout_it = j.find("layout");
  if (layout_it != j.end()) {
    const json& layout = array_field(j, "layout", path);
    for (size_t i = 0; i < layout.size(); ++i) {
      const std::string where = path + " " + at("layout", i);
      LayoutRecord entry{json_field<std::string>(layout[i], "name", where),
                         nonnegative(json_field<int64_t>(layout[i], "offset", where), where, "offset"), {}};
      int64_t count = 1;
      for (const json& d : array_field(layout[i], "shape", where)) {
        ANGLE_CHECK(fits_integer<int64_t>(d) && d.get<int64_t>() >= 0, where, ": shape holds ", d.dump().substr(0, 40));
        const int64_t size = d.get<int64_t>();
        ANGLE_CHECK(size == 0 || count <= m.numel / size, where, ": shape larger than the ", m.numel, " parameters");
        entry.shape.push_back(size);
        count *= size;
      }
      ANGLE_CHECK(entry.offset <= m.numel - count, where, ": [", entry.offset, ", +", count, ") outside the ",
                  m.numel, " parameters");
      m.layout.push_back(std::move(entry));
    }
  }
  return m;
}

Manifest read_manifest(const std::string& path) { return parse_manifest(read_json_file(path), path); }

}  // namespace angle::ckpt
