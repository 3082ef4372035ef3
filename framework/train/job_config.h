// The job file of `angle train`: INI sections and keys as in ../shared/DESIGN.md ("Job files"),
// parsed with Boost.Program_options. Any key can be overridden on the command line as
// --section.key value. The keys are one table (train/job_keys.cpp); their values are typed
// (train/job_values.h) and parsed once. Unknown keys and values of the wrong type are errors naming
// the key (and the file and line when they come from the file).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "loss/espresso.h"
#include "loss/matryoshka.h"
#include "model/encoder.h"
#include "train/job_values.h"

namespace angle::train {

struct JobConfig {
  std::string job_file, job_name;  // job name = job file stem
  // [model]
  std::string model_path;
  std::optional<std::string> pooling;  // model::Pooling's names (model/pooling.h parses them)
  std::optional<size_t> max_length;
  Dtype dtype = Dtype::fp32;          // bf16: autocast of the forward pass
  std::optional<double> dropout;      // overrides hidden and attention dropout; 0 disables
  std::optional<bool> is_llm;         // angle-emb's flag; here detected from config.json, and checked when given
  std::optional<long> bidirectional_from;  // BiLLM: a decoder's layers K.. attend both ways (model/decoder.h)
  // [lora] (r 0 and no init: full fine-tuning)
  long lora_r = 0;
  std::optional<double> lora_alpha, lora_dropout;  // default 32 and 0.1 (angle-emb's), or the init adapter's
  std::optional<std::string> lora_target_modules;  // default all seven projections, or the init adapter's
  std::string lora_init;              // a PEFT adapter directory to start from
  // [data]
  std::string train;                  // comma-separated PATH.h5 or FORMAT:PATH specs
  std::string dev;                    // stsb:PATH or sick:PATH
  std::string test;                   // comma-separated stsb:PATH or sick:PATH
  std::string mix_weights;            // comma-separated, one per training set (empty: by size)
  DataFormat format = DataFormat::any;  // what the training sets must be (any: whatever they are)
  bool filter_duplicate = true;
  std::string text_prompt;            // "{text}" template for both texts (format A)
  std::string query_prompt, doc_prompt;  // formats B/C: the query; the positive and negative
  WeightMode weight_mode = WeightMode::none;  // confidence: each example's stored weight scales its loss
  std::string source_weights;         // comma-separated weight of each training set's examples (empty: 1)
  LabelNorm label_norm = LabelNorm::none;  // range: map each set's labels to [0, 1] by its label range
  std::string label_ranges;           // comma-separated MIN:MAX per training set ("" entries: the file's)
  // [loss]
  std::string preset = "current";
  std::optional<double> cosine_w, ibn_w, cln_w, angle_w, cosine_tau, ibn_tau, angle_tau;
  loss::LabelMode label_mode = loss::LabelMode::float_labels;
  AngleReduction angle_reduction = AngleReduction::sum;
  bool local_negatives = false;
  std::optional<std::string> matryoshka_dims, matryoshka_weights;  // "384,128,64" / "1,1,1" (loss/matryoshka.h)
  std::optional<loss::FalseNegatives> false_negatives;  // unset: none
  std::optional<double> false_negative_margin;          // unset: 0.1 (margin rule only)
  std::optional<bool> ese, ese_pca;                     // Espresso (loss/espresso.h); unset: off, PCA on
  std::optional<long> ese_compression_size;             // unset: 128
  std::optional<double> ese_kl_temperature;             // unset: 1.0
  // [optim]
  double lr = 1e-5, weight_decay = 0.0, max_grad_norm = 1.0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  long warmup_steps = 0;
  // [train]
  long global_batch = 32, grad_accum = 1, epochs = 1, max_steps = -1, eval_every = 0, log_every = 10;
  long chunk = 0;                     // gradient caching: encode each rank's micro-batch K examples at a time (0: off)
  unsigned long long seed = 42;
  std::optional<int> threads;
  Device device;                      // cpu (default), cuda or cuda:N
  Backend backend = Backend::automatic;  // auto | single | mpi | nccl
  double comm_timeout = 300;          // seconds a collective may wait before all ranks abort
  bool host_staging = false;          // CUDA tensors over MPI, copied through host memory (comm/host_staged_comm.h)
  bool deterministic = false;         // deterministic kernels (train/determinism.h)
  // [shard]
  Stage stage;                        // 1: optimizer state, 2 (default): + gradients, 3: + parameters
  Dtype param_dtype = Dtype::fp32;    // dtype of the gathered parameters and the compute
  Dtype reduce_dtype = Dtype::fp32;   // dtype in which gradients are reduced
  double bucket_mb = 0;               // gradient buckets of at most this (MiB in reduce_dtype); 0: one per unit
  std::string replicate = "1";        // 1 (FSDP), node or K replicas (HSDP; shard/shard_groups.h)
  double inflight_mb = 12;            // gradient MiB being reduced at once before backward waits (stages 2, 3)
  // [run]
  std::string output_dir;  // default checkpoints/<job name>
  long checkpoint_every = 0;          // steps between sharded checkpoints (0: none; one at the end if > 0)
  int keep_last = 2;                  // complete checkpoints kept
  Resume resume;                      // none (default) | auto | a checkpoint directory
  bool allow_job_change = false;      // resume a checkpoint written by a different job configuration

  // The resolved configuration, as an INI file: every key of train/job_keys.cpp's table in its order,
  // optional keys only when set, values as std::ostream writes them.
  std::string dump() const;
  // What must not change across a resume: the model, data, loss, optimizer and schedule keys
  // (not [run], [shard], threads, backend, device or chunk: they change how the same training is
  // computed, not what it computes; chunk changes which dropout masks are drawn). FNV-1a 64 of a
  // text made from dump(): see job_config.cpp.
  uint64_t identity_hash() const;
};

// Parses FILE plus command-line overrides (["--optim.lr", "3e-5", ...]). Returns nullopt after
// printing help for --help.
std::optional<JobConfig> parse_job(const std::string& file, const std::vector<std::string>& overrides);
// The same for a job's text (`file` names it in messages), e.g. the one a checkpoint records.
JobConfig parse_job_text(const std::string& text, const std::string& file, const std::vector<std::string>& overrides = {});
std::string job_help();

// The batch arithmetic that depends on the number of ranks, checked before any work: the global
// batch splits into grad_accum micro-batches over `ranks` ranks, and train.chunk divides each
// rank's share. (parse_job checks the rank-independent part with ranks = 1.)
void check_batch_split(const JobConfig& c, int64_t ranks);

// The job's Matryoshka sizes and weights (loss/matryoshka.h; off without loss.matryoshka_dims).
loss::Matryoshka matryoshka(const JobConfig& c);

// The job's Espresso settings (loss/espresso.h; off without loss.ese).
loss::Espresso espresso(const JobConfig& c);

// The adapters the job asks for (r 0: none); checked against the [lora] init adapter's config.
model::LoraConfig lora_config(const JobConfig& c);
// How the job loads the model it trains: [model] keys, the device, the adapters (fresh ones seeded by
// train.seed). The one place that turns a job into model::EncoderOptions.
model::EncoderOptions encoder_options(const JobConfig& c);
// How the job loads a model it only evaluates (its base model, best/): pooling, max length and device;
// no dropout override and no adapters of its own (an adapter directory brings its own).
model::EncoderOptions evaluation_options(const JobConfig& c);

}  // namespace angle::train
