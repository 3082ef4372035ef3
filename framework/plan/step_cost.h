// One rank's cost of one optimizer step in `angle plan --job`'s simulation, from the job's own
// data (the step's examples, duplicates and token counts decide the data-dependent terms): the
// bytes it hands to each kind of collective, counted as comm::Comm counts them (each rank's input
// tensor per call), the model FLOPs of its rows, and the activation and loss bytes of its largest
// forward. A second code path to the trainer's, checked against its counters in the tests
// (tests/mpi/check_plan.py). Projections count the same in closed form (plan/projection.h).
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

// The ranks a call runs among (shard.replicate, shard/shard_groups.h): all of them, the rank's
// shard group, or its replica group (the ranks at its position in every shard group).
enum class Among { world, shard, replica };

// One collective call of the rank: its phase ("batch", "loss", "forward", "backward", "step"),
// kind ("all_gather", "all_reduce", "reduce_scatter"), the bytes it hands over and its ranks.
struct Call {
  std::string phase, op;
  uint64_t bytes = 0;
  Among among = Among::world;
  bool rows = false;  // Comm::all_gather_rows (NCCL sends a small one as an all-reduce)
};

// What one rank's step costs: its traffic (the time model's communication), its compute (the
// time model's FLOPs) and the sizes of its largest forward and loss (the peak memory).
struct StepCost {
  std::vector<Call> calls;
  double forward_flops = 0, backward_flops = 0;  // the model FLOPs of the rank's rows (model/model_shape.h)
  double rows_per_forward = 1;                   // the rank's rows per forward pass (a chunk's with caching)
  int64_t activation_bytes = 0, loss_bytes = 0;  // the largest forward's and loss's (plan/activation_plan.h)
  int64_t activation_rows = 0;                   // the rows of that forward
  bool dense_words = false;                      // a word-embedding gradient went as a dense matrix
  std::map<std::string, uint64_t> by_phase() const;
  uint64_t total() const;                        // bytes of all calls
};

// The job a step is simulated for: its configuration, model shape, data and sharding.
struct StepSetup {
  const train::JobConfig* job = nullptr;
  const model::ModelShape* shape = nullptr;
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
void add_stage3_gathers(std::vector<Call>& calls, const model::ModelShape& shape, const ShardSettings& s,
                        bool backward);

// The cost of rank `rank` of `setup.shard.ranks` in optimizer step `step` (1-based).
StepCost rank_step_cost(const StepSetup& setup, int rank, long step);

}  // namespace angle::plan
