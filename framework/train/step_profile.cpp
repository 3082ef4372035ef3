#include "train/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/log.h"

namespace angle::train {

const char* phase_name(Phase phase) {
  static constexpr std::array<const char*, kPhases> kNames = {
      "data", "batch", "forward", "loss", "backward", "reduce", "optimizer", "other", "eval", "checkpoint"};
  return kNames[static_cast<size_t>(phase)];
}

StepProfile::Scope::Scope(StepProfile* profile, Phase phase)
    : profile_(profile), phase_(phase), wall_start_(profile ? now_seconds() : 0),
      cpu_start_(profile ? process_cpu_seconds() : 0), device_start_(profile ? profile->device_mark() : 0) {}

StepProfile::Scope::~Scope() {
  if (!profile_) return;
  profile_->add(phase_, now_seconds() - wall_start_, process_cpu_seconds() - cpu_start_);
  if (profile_->has_device_clock()) profile_->add_device_span(phase_, device_start_, profile_->device_mark());
}

void StepProfile::add_device_span(Phase phase, uint64_t from, uint64_t to) { spans_.push_back({phase, from, to}); }

void StepProfile::add(Phase phase, double wall_s, double cpu_s) {
  Seconds& s = step_[static_cast<size_t>(phase)];
  s.wall += wall_s, s.cpu += cpu_s;
}

void StepProfile::start() { boundary_ = {now_seconds(), process_cpu_seconds()}; }

void StepProfile::read_spans() {
  for (const Span& span : spans_) {  // waits for the last span on the device
    const double seconds = clock_->seconds_between(span.from, span.to);
    device_window_[static_cast<size_t>(span.phase)] += seconds, device_run_[static_cast<size_t>(span.phase)] += seconds;
    clock_->release(span.from), clock_->release(span.to);
  }
  spans_.clear();
}

void StepProfile::end_step() {
  read_spans();
  const Seconds now{now_seconds(), process_cpu_seconds()};
  Seconds claimed;
  for (const Seconds& s : step_) claimed.wall += s.wall, claimed.cpu += s.cpu;
  add(Phase::kOther, std::max(0.0, now.wall - boundary_.wall - claimed.wall),
      std::max(0.0, now.cpu - boundary_.cpu - claimed.cpu));
  boundary_ = now;
  fold();
  ++window_steps_, ++run_steps_;
}

void StepProfile::end_run() {
  read_spans();  // the evaluation and checkpoint after the last step
  fold();
}

void StepProfile::fold() {
  for (size_t p = 0; p < kPhases; ++p) {
    window_[p].wall += step_[p].wall, window_[p].cpu += step_[p].cpu;
    run_[p].wall += step_[p].wall, run_[p].cpu += step_[p].cpu;
  }
  step_ = {};
}

nlohmann::json StepProfile::take_window() {
  nlohmann::json wall = nlohmann::json::object(), cpu = nlohmann::json::object();
  const double steps = static_cast<double>(std::max(1L, window_steps_));
  for (size_t p = 0; p < kPhases; ++p) {
    wall[phase_name(static_cast<Phase>(p))] = window_[p].wall / steps;
    cpu[phase_name(static_cast<Phase>(p))] = window_[p].cpu / steps;
  }
  nlohmann::json j = {{"phase_s", wall}, {"phase_cpu_s", cpu}};
  if (clock_) {
    nlohmann::json device = nlohmann::json::object();
    for (size_t p = 0; p < kPhases; ++p) device[phase_name(static_cast<Phase>(p))] = device_window_[p] / steps;
    j["phase_device_s"] = device;
  }
  window_ = {};
  device_window_ = {};
  window_steps_ = 0;
  return j;
}

double StepProfile::run_step_seconds() const {
  double wall = 0;
  for (size_t p = 0; p <= static_cast<size_t>(Phase::kOther); ++p) wall += run_[p].wall;  // eval, checkpoint: after
  return wall;
}

double StepProfile::run_total_seconds() const {
  return std::accumulate(run_.begin(), run_.end(), 0.0, [](double t, const Seconds& s) { return t + s.wall; });
}

nlohmann::json StepProfile::run_json() const {
  const double total = run_total_seconds();
  nlohmann::json phases = nlohmann::json::object();
  for (size_t p = 0; p < kPhases; ++p)
  {
    phases[phase_name(static_cast<Phase>(p))] = {
        {"wall_s", run_[p].wall}, {"cpu_s", run_[p].cpu}, {"share", run_[p].wall / std::max(1e-12, total)}};
    if (clock_) phases[phase_name(static_cast<Phase>(p))]["device_s"] = device_run_[p];
  }
  return {{"steps", run_steps_}, {"step_s", run_step_seconds() / static_cast<double>(std::max(1L, run_steps_))},
          {"total_s", total}, {"phases", phases}};
}

std::string StepProfile::run_table() const {
  const double total = std::max(1e-12, run_total_seconds());
  const double steps = static_cast<double>(std::max(1L, run_steps_));
  std::string out = clock_ ? "phase        s/step   share  cpu/wall  device s/step\n" : "phase        s/step   share  cpu/wall\n";
  char line[96];
  for (size_t p = 0; p < kPhases; ++p) {
    const Seconds& s = run_[p];
    std::snprintf(line, sizeof line, "%-10s %8.4f %6.1f%% %9.2f", phase_name(static_cast<Phase>(p)), s.wall / steps,
                  100.0 * s.wall / total, s.cpu / std::max(1e-12, s.wall));
    out += line;
    if (clock_) {
      std::snprintf(line, sizeof line, " %14.4f", device_run_[p] / steps);
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line, "%-10s %8.4f %6.1f%%", "total", total / steps, 100.0);
  return out + line;
}

}  // namespace angle::train
