#include "train/job_keys.h"

#include <boost/lexical_cast.hpp>
#include <boost/program_options.hpp>
#include <sstream>

#include "train/job_config.h"

namespace angle::train {
namespace po = boost::program_options;

// --- parsing the typed values (Boost.Program_options finds validate() by argument-dependent lookup) ---

// "KEY 'VALUE' (EXPECTED)"; where the error is caught, FILE:LINE or "command line" goes before it.
[[noreturn]] static void invalid(const std::string& value, const std::string& expected) {
  po::invalid_option_value error(value);
  error.m_error_template = "%option% '%value%' (" + expected + ")";
  throw error;
}
// "KEY VALUE: must be EXPECTED" (shard.stage's message before the typed values; tests and users grep it).
[[noreturn]] static void not_one_of(const std::string& value, const std::string& expected) {
  po::invalid_option_value error(value);
  error.m_error_template = "%option% %value%: must be " + expected;
  throw error;
}

template <NamedEnum E>
static void validate(boost::any& v, const std::vector<std::string>& values, E*, int) {
  po::validators::check_first_occurrence(v);
  const std::string& text = po::validators::get_single_string(values);
  const std::optional<E> value = parse_enum<E>(text);
  if (!value) invalid(text, EnumNames<E>::expected);
  v = *value;
}

static void validate(boost::any& v, const std::vector<std::string>& values, Stage*, int) {
  po::validators::check_first_occurrence(v);
  const std::string& text = po::validators::get_single_string(values);
  std::optional<Stage> stage;
  try {
    stage = Stage::of(boost::lexical_cast<int>(text));  // as the int it was read as before
  } catch (const boost::bad_lexical_cast&) {
  }
  if (!stage) not_one_of(text, "1, 2 or 3");
  v = *stage;
}

static void validate(boost::any& v, const std::vector<std::string>& values, Device*, int) {
  po::validators::check_first_occurrence(v);
  const std::string& text = po::validators::get_single_string(values);
  const std::optional<Device> device = Device::parse(text);
  if (!device) invalid(text, "cpu, cuda or cuda:N");
  v = *device;
}

static void validate(boost::any& v, const std::vector<std::string>& values, Resume*, int) {
  po::validators::check_first_occurrence(v);
  v = Resume::parse(po::validators::get_single_string(values));
}

}  // namespace angle::train

namespace angle::loss {
namespace po = boost::program_options;

static void validate(boost::any& v, const std::vector<std::string>& values, LabelMode*, int) {
  po::validators::check_first_occurrence(v);
  const std::string& text = po::validators::get_single_string(values);
  try {
    v = parse_label_mode(text);
  } catch (const std::exception&) {
    train::invalid(text, train::EnumNames<LabelMode>::expected);
  }
}

static void validate(boost::any& v, const std::vector<std::string>& values, FalseNegatives*, int) {
  po::validators::check_first_occurrence(v);
  const std::string& text = po::validators::get_single_string(values);
  const std::optional<FalseNegatives> value = train::parse_enum<FalseNegatives>(text);
  if (!value) train::invalid(text, train::EnumNames<FalseNegatives>::expected);
  v = *value;
}

}  // namespace angle::loss

namespace angle::train {
namespace {

using Presence = JobKey::Presence;

template <typename T>
std::string text_of(const T& value) {
  std::ostringstream out;  // std::ostream's defaults: 1e-05, 0.1, 300; bools as 1/0
  out << value;
  return out.str();
}

// A key with a default: JobConfig's initial value of the field.
template <typename T>
JobKey key(const char* section, const char* name, T JobConfig::*field, const char* help, Identity id = kHashed) {
  return {section, name, help, Presence::defaulted, id,
          [field](JobConfig& c) -> po::value_semantic* {
            const T initial = JobConfig{}.*field;
            return po::value<T>(&(c.*field))->default_value(initial, text_of(initial));
          },
          [field](const JobConfig& c) -> std::optional<std::string> { return text_of(c.*field); }};
}

// A key that may be absent: no default, no line in dump() when unset.
template <typename T>
JobKey key(const char* section, const char* name, std::optional<T> JobConfig::*field, const char* help,
           Identity id = kHashed) {
  return {section, name, help, Presence::optional, id,
          [field](JobConfig& c) -> po::value_semantic* {
            return po::value<T>()->notifier([&c, field](const T& v) { c.*field = v; });
          },
          [field](const JobConfig& c) -> std::optional<std::string> {
            if (!(c.*field)) return std::nullopt;
            return text_of(*(c.*field));
          }};
}

template <typename T>
JobKey required_key(const char* section, const char* name, T JobConfig::*field, const char* help) {
  return {section, name, help, Presence::required, kHashed,
          [field](JobConfig& c) -> po::value_semantic* { return po::value<T>(&(c.*field))->required(); },
          [field](const JobConfig& c) -> std::optional<std::string> { return text_of(c.*field); }};
}

using C = JobConfig;

// The table, in dump()'s order, which the job.ini files, checkpoint manifests and identity hashes
// already written depend on: a key with a default adds a line to every dump() and, when hashed, changes
// every identity hash (checkpoints of earlier builds would not resume); an optional key changes
// neither while unset. [shard] and [run] keys, threads, backend, comm_timeout, device and chunk change
// how the same training is computed, not what it computes: they are not the job's identity (chunk
// changes which dropout masks are drawn). erased(n): the order in which the first release erased them.
std::vector<JobKey> key_table() {
  return {
      required_key("model", "path", &C::model_path, "HF / sentence-transformers model directory"),
      key("model", "pooling", &C::pooling, "cls, cls_avg, cls_max, mean, max, last, index (default: the model's)"),
      key("model", "max_length", &C::max_length, "tokens per text incl. [CLS]/[SEP] (default: the model's)"),
      key("model", "dtype", &C::dtype, "fp32, or bf16 autocast of the forward pass"),
      key("model", "dropout", &C::dropout, "hidden and attention dropout (default: config.json; 0 disables)"),
      key("model", "is_llm", &C::is_llm, "true for a LLaMA-family decoder, false for BERT (default: from "
                                         "config.json's model_type; given, it must agree)"),
      key("model", "bidirectional_from", &C::bidirectional_from,
          "BiLLM: a decoder's layers K.. attend both ways, 0..layers (default: the model directory's; none)"),

      key("lora", "r", &C::lora_r, "adapter rank (0: no LoRA)"),
      key("lora", "alpha", &C::lora_alpha, "scaling numerator: updates are scaled by alpha / r (default 32)"),
      key("lora", "dropout", &C::lora_dropout, "dropout on the adapters' input (default 0.1)"),
      key("lora", "target_modules", &C::lora_target_modules,
          "comma-separated projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all (default)"),
      key("lora", "init", &C::lora_init, "a PEFT adapter directory to start from (sets r, alpha and target_modules)"),

      required_key("data", "train", &C::train, "training sets, comma-separated: PATH.h5 (angle prepare) or "
                                               "FORMAT:PATH (stsb, sick, snli-senteval, ...)"),
      key("data", "mix_weights", &C::mix_weights, "sampling weight of each training set"),
      key("data", "dev", &C::dev, "dev set for evaluation during training"),
      key("data", "test", &C::test, "test sets evaluated at the end (comma-separated)"),
      key("data", "format", &C::format,
          "A (text1,text2,label), B (query,positive) or C (query,positive,negative); empty: the training sets' own"),
      key("data", "filter_duplicate", &C::filter_duplicate,
          "drop a pair whose text's token ids already occur in its batch (as angle-emb fit())"),
      key("data", "text_prompt", &C::text_prompt, "format A: template with {text} for both texts"),
      key("data", "query_prompt", &C::query_prompt, "formats B/C: template with {text} for queries"),
      key("data", "doc_prompt", &C::doc_prompt, "formats B/C: template with {text} for positives and negatives"),
      key("data", "weight_mode", &C::weight_mode,
          "none, or confidence: each example's stored weight (LLM confidence) scales its part of every loss term"),
      key("data", "source_weights", &C::source_weights,
          "weight of each training set's examples, comma-separated (default 1 each)"),
      key("data", "label_norm", &C::label_norm,
          "none, or range: map each training set's labels to [0, 1] by its label range (datasets/README.md)"),
      key("data", "label_ranges", &C::label_ranges,
          "MIN:MAX of each training set, comma-separated; an empty entry takes the file's recorded range"),

      key("loss", "preset", &C::preset, "current, v0.4.6-cli or paper (sets the weights)"),
      key("loss", "cosine_w", &C::cosine_w, "weight of the cosine (CoSENT) term"),
      key("loss", "ibn_w", &C::ibn_w, "weight of the in-batch negative term"),
      key("loss", "cln_w", &C::cln_w, "weight of the hard-negative contrastive term (format C)"),
      key("loss", "angle_w", &C::angle_w, "weight of the angle term"),
      key("loss", "cosine_tau", &C::cosine_tau, "scale of the cosine term"),
      key("loss", "ibn_tau", &C::ibn_tau, "scale of the in-batch negative / contrastive terms"),
      key("loss", "angle_tau", &C::angle_tau, "scale of the angle term"),
      key("loss", "label_mode", &C::label_mode, "float (v0.6) or legacy-int (<= v0.5.6)"),
      key("loss", "angle_reduction", &C::angle_reduction, "sum or mean"),
      key("loss", "local_negatives", &C::local_negatives,
          "per-rank in-batch negatives as the reference (multi-rank runs)"),
      key("loss", "matryoshka_dims", &C::matryoshka_dims,
          "Matryoshka: the loss summed over the embeddings cut to each of these sizes and re-normalised, "
          "strictly decreasing, e.g. 384,128,64 (sentence-transformers' MatryoshkaLoss; default: off)"),
      key("loss", "matryoshka_weights", &C::matryoshka_weights, "weight of each Matryoshka size (default 1 each)"),
      key("loss", "false_negatives", &C::false_negatives,
          "formats B/C: none (default), text (a candidate with the positive's text is not a negative) or margin "
          "(nor one whose cosine exceeds the positive's by false_negative_margin), over the global batch"),
      key("loss", "false_negative_margin", &C::false_negative_margin, "the margin rule's cosine margin (default 0.1)"),
      key("loss", "ese", &C::ese, "Espresso (angle-emb's apply_ese): the objective on every layer's first "
                                  "ese_compression_size dimensions too (default: off)"),
      key("loss", "ese_compression_size", &C::ese_compression_size, "Espresso: dimensions kept (default 128)"),
      key("loss", "ese_kl_temperature", &C::ese_kl_temperature, "Espresso: KL temperature (default 1; <= 0: no KL)"),
      key("loss", "ese_pca", &C::ese_pca, "Espresso: pull the kept dimensions towards a PCA of the layer (default true)"),

      key("optim", "lr", &C::lr, "peak learning rate (AdamW)"),
      key("optim", "weight_decay", &C::weight_decay, "decoupled; not on biases/LayerNorm"),
      key("optim", "warmup_steps", &C::warmup_steps, "linear warm-up, then linear decay to 0"),
      key("optim", "max_grad_norm", &C::max_grad_norm, "clip by global norm (0: off)"),
      key("optim", "adam_beta1", &C::adam_beta1, ""),
      key("optim", "adam_beta2", &C::adam_beta2, ""),
      key("optim", "adam_eps", &C::adam_eps, ""),

      key("train", "global_batch", &C::global_batch, "pairs per optimizer step"),
      key("train", "grad_accum", &C::grad_accum, "micro-batches per step"),
      key("train", "epochs", &C::epochs, "passes over the training set"),
      key("train", "max_steps", &C::max_steps, "stop after N steps (-1: epochs decide)"),
      key("train", "seed", &C::seed, "seeds data order, initialisation and dropout"),
      key("train", "eval_every", &C::eval_every, "dev evaluation every N steps (0: each epoch)"),
      key("train", "log_every", &C::log_every, "metrics.jsonl line every N steps"),
      key("train", "chunk", &C::chunk,
          "gradient caching: encode each rank's micro-batch K examples at a time, loss on all of it (0: off)",
          erased(5)),
      key("train", "threads", &C::threads, "intra-op threads (default: all cores)", erased(1)),
      key("train", "device", &C::device, "cpu, cuda or cuda:N", erased(4)),
      key("train", "backend", &C::backend, "auto (mpi under mpirun/srun, else single), single, mpi or nccl",
          erased(2)),
      key("train", "comm_timeout", &C::comm_timeout,
          "seconds a collective may wait before every rank aborts (watchdog)", erased(3)),
      key("train", "host_staging", &C::host_staging,
          "with train.device = cuda and train.backend = mpi: copy every collective's tensors through host memory "
          "(slow: several ranks on one GPU, for tests)",
          erased(6)),
      key("train", "deterministic", &C::deterministic,
          "deterministic kernels (bitwise-equal resumes on GPU; slower there, no effect on the CPU)", erased(7)),

      key("shard", "stage", &C::stage,
          "1: optimizer state sharded, 2: + gradients, 3: + parameters (gathered per unit just in time)", kNotHashed),
      key("shard", "param_dtype", &C::param_dtype,
          "fp32 or bf16: parameters as gathered and computed with (the master copy stays fp32)", kNotHashed),
      key("shard", "reduce_dtype", &C::reduce_dtype, "fp32 or bf16: gradients as reduced across ranks", kNotHashed),
      key("shard", "bucket_mb", &C::bucket_mb,
          "stages 2, 3: a unit's gradients are reduced in buckets of at most this many MiB (reduce_dtype); 0: one "
          "collective per unit",
          kNotHashed),
      key("shard", "replicate", &C::replicate,
          "1: shard over every rank (FSDP); node: shard inside each node, one replica per node (HSDP); K: K "
          "replicas of ranks/K ranks each",
          kNotHashed),
      key("shard", "inflight_mb", &C::inflight_mb,
          "stages 2, 3: MiB of gradients being reduced at once; past it backward waits (memory vs overlap)",
          kNotHashed),

      key("run", "output_dir", &C::output_dir, "default checkpoints/<job name>", kNotHashed),
      key("run", "checkpoint_every", &C::checkpoint_every,
          "steps between sharded checkpoints (0: none; > 0: also one at the end); SIGTERM/SIGUSR1 always checkpoint",
          kNotHashed),
      key("run", "keep_last", &C::keep_last, "complete checkpoints kept", kNotHashed),
      key("run", "resume", &C::resume, "none, auto (newest complete checkpoint) or DIR", kNotHashed),
      key("run", "allow_job_change", &C::allow_job_change,
          "resume a checkpoint written by a different job configuration", kNotHashed),
  };
}

}  // namespace

const std::vector<JobKey>& job_keys() {
  static const std::vector<JobKey> keys = key_table();
  return keys;
}

std::string section_caption(const std::string& section) {
  if (section == "lora") return "[lora] (LoRA adapters on a decoder; r = 0 and no init: full fine-tuning)";
  if (section == "shard") return "[shard] (FSDP; see README \"Sharding\")";
  return "[" + section + "]";
}

}  // namespace angle::train
