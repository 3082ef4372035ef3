// The manifest.json of a sharded checkpoint (checkpoints/README.md), read as untrusted input: every
// field type-checked, every shard file named as the writer names it (no path of the manifest's
// choosing is ever opened), every range and layout entry inside the parameters, ranks inside the
// world. Errors name the file and the field.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace angle::ckpt {

// 2: each shard lists the ranges of the global flat space it holds (one per unit since FSDP
// units); 1 (still read): rank r held the r-th equal slice.
inline constexpr int kFormatVersion = 2;

struct ShardRecord {
  int rank = 0;
  std::string file, sha256;
  std::vector<std::pair<int64_t, int64_t>> ranges;  // (begin, size) of the global flat space, in order
  bool has_ranges = false;                          // format 1: equal slices of shard_size instead
};

struct LayoutRecord {
  std::string name;
  int64_t offset = 0;
  std::vector<int64_t> shape;
};

struct Manifest {
  int format_version = 1;
  int world_size = 1;
  int64_t numel = 0, shard_size = 0, optimizer_steps = 0;
  long step = 0, best_step = 0;
  uint64_t cursor = 0;
  double best_dev = -1e9;
  std::string job, job_hash;
  std::vector<ShardRecord> shards;
  std::vector<LayoutRecord> layout;
};

// "shard-R-of-W.safetensors".
std::string shard_name(int rank, int world);
// A manifest of a newer format is returned as read (format_version > kFormatVersion) for the caller
// to reject with its own words; its fields are not checked.
Manifest parse_manifest(const nlohmann::json& j, const std::string& path);
Manifest read_manifest(const std::string& path);

}  // namespace angle::ckpt
