// The communication half of `angle plan`: the bytes one rank hands to each kind of collective in
// an optimizer step, counted as comm::Comm counts them (each rank's input tensor per call), from
// the job's own data (the step's examples, duplicates and token counts decide the data-dependent
// terms). A second code path to the trainer's, checked against its counters in the tests.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "plan/activation_plan.h"
#include "plan/memory_plan.h"
#include "train/job_config.h"
#include "train/training_data.h"

namespace angle::plan {

// One collective call of the rank: its phase ("batch", "loss", "forward", "backward", "step"),
// kind ("all_gather", "all_reduce", "reduce_scatter", "reduce") and the bytes it hands over.
struct Call {
  std::string phase, op;
  uint64_t bytes = 0;
};

struct CommBytes {
  std::vector<Call> calls;
  double forward_flops = 0, backward_flops = 0;  // the model FLOPs of the rank's rows (plan/model_shape.h)
  double rows_per_forward = 1;                   // the rank's rows per forward pass (a chunk's with caching)
  int64_t activation_bytes = 0, loss_bytes = 0;  // the largest forward's and loss's (plan/activation_plan.h)
  int64_t activation_rows = 0;                   // the rows of that forward
  std::map<std::string, uint64_t> by_phase() const;
  uint64_t total() const;
};

struct CommSetup {
  const train::JobConfig* job = nullptr;
  const ModelShape* shape = nullptr;
  const train::TrainingData* data = nullptr;
  ShardSettings shard;
  std::vector<int64_t> empty_text_ids;  // the dummy row of a rank without rows ("" tokenized)
  int64_t pad_id = 0;
  bool dropout = false;          // dropout > 0 in training
  bool adapter_dropout = false;  // LoRA dropout > 0 in training
};

// The all-gathers stage 3 issues before a forward (every unit but the word embeddings, which are
// looked up by rows) or before a backward (also not the last unit, kept
// from its forward): a unit's trainable and frozen parameters as two buffers, each padded to a
// multiple of the ranks.
void add_stage3_gathers(CommBytes& out, const ModelShape& shape, const ShardSettings& s, bool backward);

// Rank `rank` of `setup.shard.ranks` in optimizer step `step` (1-based).
CommBytes step_comm_bytes(const CommSetup& setup, int rank, long step);

}  // namespace angle::plan
