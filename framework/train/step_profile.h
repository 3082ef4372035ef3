// Where a training run's time goes: wall and CPU seconds per phase of its steps, for each metrics
// window (metrics.jsonl `phase_s` and `phase_cpu_s`: seconds per step, averaged over the steps
// since the previous line) and for the run (the table at the end of `angle train`, eval.json
// `profile`). Every second of the run between start() and the last end_step() is in one phase:
// a step's interval runs from the previous step's end to its own; the dev evaluation and the
// checkpoint written after a step are phases of their own, reported with the next step.
//
// On a GPU the host only queues work, so its seconds say little about a phase: with a device
// clock (train/device_clock.h: CUDA events on the compute stream) each timed phase also gets the
// device seconds between events recorded at its start and end (`phase_device_s`, the table's
// device column), read at the end of the step. The update (reduce, clip, AdamW) is one device
// span, under optimizer.
//
// CPU seconds are the whole process's (every LibTorch/OpenMP thread, and the data thread reading
// the next step meanwhile) while the phase ran on the training thread: CPU/wall near the thread
// count means the phase kept every core busy, near 0 that it waited (I/O, a collective).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace angle::train {

enum class Phase {
  kData,        // waiting for the step's examples (read and tokenised one step ahead on a thread)
  kBatch,       // the global duplicate filter and this rank's token rows
  kForward,     // the encoder (stage 3: with its parameter gathers)
  kLoss,        // the AnglE loss (with the embeddings' all-gather across ranks)
  kBackward,    // autograd through loss and encoder (stages 2/3: reductions start meanwhile)
  kReduce,      // waiting for gradient reductions (stages 2/3) and the step's collectives (stage 1's
                // reduce-scatter, the gradient norm, the parameters' all-gather)
  kOptimizer,   // clipping and AdamW on this rank's shard
  kOther,       // the rest of the step: logging, progress, the stop-signal check
  kEval,        // after a step: the dev evaluation and saving best/
  kCheckpoint,  // after a step: writing a checkpoint
};
constexpr size_t kPhases = 10;
const char* phase_name(Phase phase);

// A device's clock: marks (events) on its compute stream, and the seconds between two of them.
class DeviceClock {
 public:
  virtual ~DeviceClock() = default;
  virtual uint64_t mark() = 0;
  virtual double seconds_between(uint64_t from, uint64_t to) = 0;  // waits until `to` is reached
  virtual void release(uint64_t mark) = 0;
};

class StepProfile {
 public:
  // Times one phase from construction to destruction; a null profile times nothing.
  class Scope {
   public:
    Scope(StepProfile* profile, Phase phase);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    StepProfile* profile_;
    Phase phase_;
    double wall_start_, cpu_start_;
    uint64_t device_start_ = 0;
  };

  // Device seconds too, from now on (null: none).
  void set_device_clock(std::unique_ptr<DeviceClock> clock) { clock_ = std::move(clock); }
  bool has_device_clock() const { return clock_ != nullptr; }
  // A mark on the device clock (0 without one), and a phase's span between two marks.
  uint64_t device_mark() { return clock_ ? clock_->mark() : 0; }
  void add_device_span(Phase phase, uint64_t from, uint64_t to);

  void start();  // the run's first step begins
  void add(Phase phase, double wall_s, double cpu_s);
  // A step ended: what no phase claimed since the previous step ended (or start()) is kOther.
  void end_step();
  // {"phase_s": {...}, "phase_cpu_s": {...}}: seconds per step over the window, then a new window.
  nlohmann::json take_window();
  // Adds the evaluation and checkpoint times after the last step to the run's totals.
  void end_run();
  // The run's totals: {"steps", "step_s" (mean step), "total_s", "phases": {name: {"wall_s",
  // "cpu_s", "share" (of total_s)}}}.
  nlohmann::json run_json() const;
  // The run's table: phase, seconds per step, share of the total, CPU/wall.
  std::string run_table() const;
  long run_steps() const { return run_steps_; }
  double run_step_seconds() const;  // the steps' wall time, evaluations and checkpoints excluded

 private:
  struct Seconds {
    double wall = 0, cpu = 0;
  };
  void fold();        // step_ into window_ and run_
  void read_spans();  // the device seconds of spans_, into the window and the run
  double run_total_seconds() const;  // every phase, evaluations and checkpoints included
  struct Span {
    Phase phase;
    uint64_t from, to;
  };
  std::array<Seconds, kPhases> window_{}, run_{}, step_{};
  std::array<double, kPhases> device_window_{}, device_run_{};
  std::vector<Span> spans_;  // this step's, read at its end
  std::unique_ptr<DeviceClock> clock_;
  Seconds boundary_;  // when the previous step ended
  long window_steps_ = 0, run_steps_ = 0;
};

}  // namespace angle::train
