// Sharded checkpoints (format in checkpoints/README.md). Every rank writes only the slices of
// the flat fp32 parameters and AdamW moments that it owns (no rank gathers the model) into
// <output_dir>/step-<N>.tmp/, then rank 0 writes the manifest (step, cursor, job, tensor layout,
// shard ranges and checksums) and a COMPLETE marker, fsyncs, renames the directory to step-<N>
// and repoints `latest`. A crash at any moment leaves the previous complete checkpoint usable.
// Resuming reads, on any number of ranks, the slices each rank now owns.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <vector>
#include <string>

#include <ATen/core/Tensor.h>

#include "ckpt/manifest.h"
#include "comm/comm.h"
#include "core/test_hooks.h"
#include "shard/fsdp.h"

namespace angle::ckpt {

struct TrainingState {
  long step = 0;           // optimizer steps completed
  uint64_t cursor = 0;     // global examples consumed
  std::string job;         // the resolved job configuration that wrote it
  uint64_t job_hash = 0;   // hash of the parts that must not change across a resume
  double best_dev = -1e9;  // best dev Spearman so far, so that best/ survives a resume
  long best_step = 0;
};

// Collective: every rank calls it. Keeps the newest `keep_last` complete checkpoints. `hooks`:
// the tests' fault injection (TestHooks::Point::kSave fails after this rank's shard is written).
void save(const std::string& output_dir, const TrainingState& state, shard::ShardedModel& sharded,
          comm::Comm& comm, int keep_last, const TestHooks* hooks = nullptr);

struct ResumeOptions {
  std::string spec;              // "auto" (newest complete checkpoint in output_dir) or a directory
  bool allow_job_change = false;
};

// Collective. Returns the state of the checkpoint restored into `sharded` (and the RNG), or
// nullopt when `auto` finds none. Incomplete or corrupt checkpoints are skipped with a warning.
std::optional<TrainingState> resume(const std::string& output_dir, const ResumeOptions& options,
                                    uint64_t job_hash, shard::ShardedModel& sharded, comm::Comm& comm);

// Not collective: the full flat fp32 parameter vector of a checkpoint written on any number of
// ranks (stitched from every shard, checksums verified), and the job configuration that wrote it.
struct FullCheckpoint {
  at::Tensor parameters;  // [numel], in the model's named_parameters() order (trainable ones)
  std::map<std::string, std::pair<int64_t, std::vector<int64_t>>> layout;  // name -> (offset, shape)
  std::string job;
  long step = 0;
};
FullCheckpoint read_full(const std::string& dir);

}  // namespace angle::ckpt
