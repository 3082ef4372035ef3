// What `angle plan` found for a job (simulated over its data) or a projection (closed form), as
// plan/planner.h returns it, and its two renderings: the table and one line of JSON (README
// "Planning").
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "model/model_shape.h"
#include "plan/memory_plan.h"
#include "plan/step_cost.h"
#include "plan/time_plan.h"

namespace angle::plan {

// The peak against a memory limit per rank (--memory-gb).
struct MemoryFit {
  double gb = 0;            // the limit as given
  double limit_bytes = 0;   // gb x 1e9
  bool fits = false;        // the peak
  bool state_fits = false;  // the model state alone
  // The most examples one forward pass can take within the limit (0: the model alone does not fit).
  int64_t max_examples = 0;
};

struct PlanReport {
  std::string subject;  // the job file or the projected config.json
  int64_t ranks = 1, stage = 1, rows_per_example = 2, grad_accum = 1;
  int64_t replicas = 1;  // shard.replicate, resolved
  model::ModelShape shape;
  StateBytes state;
  PeakBytes peak;
  std::string runtime_label;    // what peak.runtime is
  int64_t activation_rows = 1;  // the rows of the forward that peak.activations counts
  long step = 1;                // the step whose traffic `comm` is
  StepCost comm;                // rank 0's
  StepTime time, time1;         // at `ranks`; at one rank
  std::optional<double> steps_per_epoch;
  Machine machine;
  std::string machine_label;    // what machine.flops_per_thread is per
  std::optional<MemoryFit> fit;
  double scaling_efficiency() const;  // step(1 rank) / (N x step(N))
};

// One JSON object (no newline).
std::string report_json(const PlanReport& r);

// The table, a few lines.
void print_report(std::ostream& out, const PlanReport& r);

}  // namespace angle::plan
