#include "plan/plan_report.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"

namespace angle::plan {

double PlanReport::scaling_efficiency() const { return time1.step() / (static_cast<double>(ranks) * time.step()); }

std::string report_json(const PlanReport& o) {
  const StateBytes& state = o.state;
  const PeakBytes& peak = o.peak;
  nlohmann::json j = {{"ranks", o.ranks}, {"stage", o.stage}, {"parameters", o.shape.numel()},
                      {"frozen_parameters", o.shape.frozen()},
                      {"state_bytes", {{"params", state.params}, {"grads", state.grads}, {"optim", state.optim},
                                       {"total", state.total()}}},
                      {"peak_bytes", {{"runtime", peak.runtime}, {"load", peak.load},
                                      {"activations", peak.activations}, {"loss", peak.loss}, {"total", peak.total()}}},
                      {"comm_bytes", {{"step", o.step}, {"rank", 0}, {"total", o.comm.total()}}}};
  for (const auto& [phase, bytes] : o.comm.by_phase()) j["comm_bytes"][phase] = bytes;
  j["time"] = {{"compute_s", o.time.compute}, {"optimizer_s", o.time.optimizer}, {"comm_s", o.time.comm},
               {"exposed_comm_s", o.time.exposed_comm}, {"step_s", o.time.step()}, {"step_s_one_rank", o.time1.step()},
               {"scaling_efficiency", o.scaling_efficiency()}, {"flops_per_thread", o.machine.flops_per_thread},
               {"alpha_s", o.machine.alpha_s}, {"beta_bytes_per_s", o.machine.beta_bytes_per_s}, {"cores", o.machine.cores}};
  if (o.steps_per_epoch) j["time"]["epoch_s"] = o.time.step() * *o.steps_per_epoch;
  if (o.fit) {
    j["memory_limit_bytes"] = o.fit->limit_bytes;
    j["fits"] = o.fit->fits;
    j["state_fits"] = o.fit->state_fits;
    j["max_examples_per_forward"] = o.fit->max_examples;
  }
  return j.dump();
}

void print_report(std::ostream& out, const PlanReport& o) {
  const StateBytes& state = o.state;
  const PeakBytes& peak = o.peak;
  out << "plan: " << o.subject << " on " << o.ranks << " rank(s), stage " << o.stage << ", " << o.shape.numel()
      << " trainable parameters";
  if (o.shape.frozen() > 0) out << " (" << o.shape.frozen() << " frozen)";
  out << "\n"
      << "model state per rank (peak): parameters " << mib(state.params) << ", gradients " << mib(state.grads)
      << ", optimizer " << mib(state.optim) << ", total " << mib(state.total()) << "\n"
      << "peak memory per rank (estimate): " << mib(peak.total()) << " = " << o.runtime_label << " "
      << mib(peak.runtime) << " + max(model load " << mib(peak.load) << ", model state " << mib(peak.state)
      << " + " << kHeapOverhead
      << " x (activations " << mib(peak.activations) << " + loss " << mib(peak.loss) << "))\n"
      << "communication of rank 0 in step " << o.step << ": " << mib(static_cast<int64_t>(o.comm.total()));
  for (const auto& [phase, bytes] : o.comm.by_phase()) out << ", " << phase << " " << mib(static_cast<int64_t>(bytes));
  out << "\n"
      << std::setprecision(3) << "time per step (rank 0): compute " << o.time.compute << " s, optimizer "
      << o.time.optimizer << " s, communication " << o.time.comm << " s of which exposed " << o.time.exposed_comm
      << " s, step " << o.time.step() << " s";
  if (o.steps_per_epoch) out << "; epoch " << o.time.step() * *o.steps_per_epoch / 60 << " min";
  out << "; 1 rank " << o.time1.step() << " s/step, scaling efficiency " << 100 * o.scaling_efficiency() << "%\n"
      << "  (machine: " << o.machine.flops_per_thread / 1e9 << " GFLOP/s per " << o.machine_label << ", alpha "
      << o.machine.alpha_s * 1e6 << " us, beta " << o.machine.beta_bytes_per_s / 1e9 << " GB/s)\n";
  if (o.fit) {
    out << "peak " << (o.fit->fits ? "fits" : "does NOT fit") << " in " << o.fit->gb << " GB per rank";
    if (o.fit->max_examples == 0) out << "; the model alone does not fit: more ranks or a higher stage\n";
    else
      out << "; at most ~" << o.fit->max_examples << " examples per forward pass: train.chunk " << o.fit->max_examples
          << " (gradient caching), or without it a global batch up to "
          << o.fit->max_examples * o.ranks * o.grad_accum << "\n";
  }
}

}  // namespace angle::plan
