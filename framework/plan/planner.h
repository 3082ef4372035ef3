// `angle plan`'s two planners (README "Planning"): a job on its own model and data on N CPU
// ranks, every rank's step simulated (plan/step_cost.h); and a projection, a model known by its
// config.json alone (BERT or a LLaMA-family decoder, optionally with LoRA) on N accelerators with
// uniform data, in closed form (plan/projection.h). Each checks its options as it reaches them
// (the messages name the command-line options) and returns what the table and the JSON show.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan_report.h"

namespace angle::plan {

// The machine as the options give it: a calibration file (plan/calibrate.h) or the planner's
// defaults, then overrides.
struct MachineOptions {
  std::optional<std::string> file;      // --machine
  std::optional<double> flops;          // --flops: model FLOP/s of one thread (job) or one accelerator (projection)
  std::optional<int64_t> cores;         // --cores: per node
  std::optional<int64_t> per_node;      // --per-node: ranks per node (default: all on one)
  std::optional<std::string> link;      // --link intra=GB/s[,inter=GB/s][,latency=us]
};

struct JobPlanOptions {
  std::string job_file;
  std::vector<std::string> overrides;   // job keys: --section.key value
  int64_t ranks = 1;
  long step = 2;                        // communication and time: step S; peak memory: steps 1..S
  MachineOptions machine;
  std::optional<double> memory_gb;      // the memory per rank to fit in
};

struct ProjectionOptions {
  std::string config;                   // config.json
  int64_t ranks = 1;
  int64_t global_batch = 1024;          // examples per optimizer step
  int64_t tokens = 256;                 // per text, special tokens included
  std::string format = "A";             // A, B (2 texts per example) or C (3)
  int64_t chunk = 0;                    // gradient caching: examples per forward pass (0: none)
  int64_t lora = 0;                     // LoRA rank (0: full fine-tuning)
  int stage = 3;
  std::string dtype = "bf16";           // parameter and reduction dtype: bf16 or fp32
  std::string replicate = "1";          // shard.replicate: 1, node or K replicas (hybrid sharding)
  double bucket_mb = 0;                 // shard.bucket_mb
  double hbm_gb_s = 3350;               // accelerator memory bandwidth (an H100 SXM's HBM3)
  double reserve_gb = 0;                // memory per accelerator taken before training
  std::optional<int64_t> examples;      // per epoch (for the epoch time)
  MachineOptions machine;
  std::optional<double> memory_gb;
};

// Every rank of the job in steps 1..S: the peak memory over all of them; rank 0's traffic and
// the slowest rank's work in step S. Loads the job's tokenizer and data (not the weights).
PlanReport plan_job(const JobPlanOptions& o);

PlanReport plan_projection(const ProjectionOptions& o);

}  // namespace angle::plan
