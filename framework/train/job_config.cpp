#include "train/job_config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "data/raw_dataset.h"

namespace angle::train {
namespace po = boost::program_options;
namespace {

template <typename T>
void optional_key(po::options_description& d, const char* name, std::optional<T>& target, const char* help) {
  d.add_options()(name, po::value<T>()->notifier([&target](const T& v) { target = v; }), help);
}

po::options_description describe(JobConfig& c) {
  po::options_description model("[model]"), data("[data]"), loss("[loss]"), optim("[optim]"), train("[train]"),
      run("[run]");
  model.add_options()
      ("model.path", po::value(&c.model_path)->required(), "HF / sentence-transformers model directory")
      ("model.dtype", po::value(&c.dtype)->default_value(c.dtype), "fp32, or bf16 autocast of the forward pass");
  optional_key(model, "model.pooling", c.pooling, "cls, cls_avg, cls_max, mean, max, last, index (default: the model's)");
  optional_key(model, "model.max_length", c.max_length, "tokens per text incl. [CLS]/[SEP] (default: the model's)");
  optional_key(model, "model.dropout", c.dropout, "hidden and attention dropout (default: config.json; 0 disables)");
  optional_key(model, "model.is_llm", c.is_llm, "true for a LLaMA-family decoder, false for BERT (default: from "
                                                "config.json's model_type; given, it must agree)");
  po::options_description lora("[lora] (LoRA adapters on a decoder; r = 0 and no init: full fine-tuning)");
  lora.add_options()
      ("lora.r", po::value(&c.lora_r)->default_value(c.lora_r), "adapter rank (0: no LoRA)")
      ("lora.init", po::value(&c.lora_init)->default_value(""), "a PEFT adapter directory to start from (sets r, "
                                                                "alpha and target_modules)");
  optional_key(lora, "lora.alpha", c.lora_alpha, "scaling numerator: updates are scaled by alpha / r (default 32)");
  optional_key(lora, "lora.dropout", c.lora_dropout, "dropout on the adapters' input (default 0.1)");
  optional_key(lora, "lora.target_modules", c.lora_target_modules,
               "comma-separated projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all (default)");
  data.add_options()
      ("data.train", po::value(&c.train)->required(), "training sets, comma-separated: PATH.h5 (angle prepare) or "
                                                      "FORMAT:PATH (stsb, sick, snli-senteval, ...)")
      ("data.mix_weights", po::value(&c.mix_weights)->default_value(""), "sampling weight of each training set")
      ("data.dev", po::value(&c.dev)->default_value(""), "dev set for evaluation during training")
      ("data.test", po::value(&c.test)->default_value(""), "test set evaluated at the end")
      ("data.format", po::value(&c.format)->default_value(""),
       "A (text1,text2,label), B (query,positive) or C (query,positive,negative); empty: the training sets' own")
      ("data.filter_duplicate", po::value(&c.filter_duplicate)->default_value(true),
       "drop a pair whose text's token ids already occur in its batch (as angle-emb fit())")
      ("data.text_prompt", po::value(&c.text_prompt)->default_value(""), "format A: template with {text} for both texts")
      ("data.query_prompt", po::value(&c.query_prompt)->default_value(""), "formats B/C: template with {text} for queries")
      ("data.doc_prompt", po::value(&c.doc_prompt)->default_value(""),
       "formats B/C: template with {text} for positives and negatives")
      ("data.weight_mode", po::value(&c.weight_mode)->default_value(c.weight_mode),
       "none, or confidence: each example's stored weight (LLM confidence) scales its part of every loss term")
      ("data.source_weights", po::value(&c.source_weights)->default_value(""),
       "weight of each training set's examples, comma-separated (default 1 each)")
      ("data.label_norm", po::value(&c.label_norm)->default_value(c.label_norm),
       "none, or range: map each training set's labels to [0, 1] by its label range (datasets/README.md)")
      ("data.label_ranges", po::value(&c.label_ranges)->default_value(""),
       "MIN:MAX of each training set, comma-separated; an empty entry takes the file's recorded range");
  loss.add_options()
      ("loss.preset", po::value(&c.preset)->default_value(c.preset), "current, v0.4.6-cli or paper (sets the weights)")
      ("loss.label_mode", po::value(&c.label_mode)->default_value(c.label_mode), "float (v0.6) or legacy-int (<= v0.5.6)")
      ("loss.angle_reduction", po::value(&c.angle_reduction)->default_value(c.angle_reduction), "sum or mean")
      ("loss.local_negatives", po::value(&c.local_negatives)->default_value(false),
       "per-rank in-batch negatives as the reference (multi-rank runs)");
  optional_key(loss, "loss.cosine_w", c.cosine_w, "weight of the cosine (CoSENT) term");
  optional_key(loss, "loss.ibn_w", c.ibn_w, "weight of the in-batch negative term");
  optional_key(loss, "loss.cln_w", c.cln_w, "weight of the hard-negative contrastive term (format C)");
  optional_key(loss, "loss.angle_w", c.angle_w, "weight of the angle term");
  optional_key(loss, "loss.cosine_tau", c.cosine_tau, "scale of the cosine term");
  optional_key(loss, "loss.ibn_tau", c.ibn_tau, "scale of the in-batch negative / contrastive terms");
  optional_key(loss, "loss.angle_tau", c.angle_tau, "scale of the angle term");
  optim.add_options()
      ("optim.lr", po::value(&c.lr)->default_value(c.lr), "peak learning rate (AdamW)")
      ("optim.weight_decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "decoupled; not on biases/LayerNorm")
      ("optim.warmup_steps", po::value(&c.warmup_steps)->default_value(c.warmup_steps), "linear warm-up, then linear decay to 0")
      ("optim.max_grad_norm", po::value(&c.max_grad_norm)->default_value(c.max_grad_norm), "clip by global norm (0: off)")
      ("optim.adam_beta1", po::value(&c.adam_beta1)->default_value(c.adam_beta1), "")
      ("optim.adam_beta2", po::value(&c.adam_beta2)->default_value(c.adam_beta2), "")
      ("optim.adam_eps", po::value(&c.adam_eps)->default_value(c.adam_eps), "");
  train.add_options()
      ("train.global_batch", po::value(&c.global_batch)->default_value(c.global_batch), "pairs per optimizer step")
      ("train.grad_accum", po::value(&c.grad_accum)->default_value(c.grad_accum), "micro-batches per step")
      ("train.chunk", po::value(&c.chunk)->default_value(c.chunk),
       "gradient caching: encode each rank's micro-batch K examples at a time, loss on all of it (0: off)")
      ("train.epochs", po::value(&c.epochs)->default_value(c.epochs), "passes over the training set")
      ("train.max_steps", po::value(&c.max_steps)->default_value(c.max_steps), "stop after N steps (-1: epochs decide)")
      ("train.seed", po::value(&c.seed)->default_value(c.seed), "seeds data order, initialisation and dropout")
      ("train.eval_every", po::value(&c.eval_every)->default_value(c.eval_every), "dev evaluation every N steps (0: each epoch)")
      ("train.log_every", po::value(&c.log_every)->default_value(c.log_every), "metrics.jsonl line every N steps")
      ("train.device", po::value(&c.device)->default_value(c.device), "cpu, cuda or cuda:N")
      ("train.backend", po::value(&c.backend)->default_value(c.backend),
       "auto (mpi under mpirun/srun, else single), single, mpi or nccl")
      ("train.comm_timeout", po::value(&c.comm_timeout)->default_value(c.comm_timeout),
       "seconds a collective may wait before every rank aborts (watchdog)");
  optional_key(train, "train.threads", c.threads, "intra-op threads (default: all cores)");
  po::options_description shard("[shard] (FSDP; see README \"Sharding\")");
  shard.add_options()
      ("shard.stage", po::value(&c.stage)->default_value(c.stage),
       "1: optimizer state sharded, 2: + gradients, 3: + parameters (gathered per unit just in time)")
      ("shard.param_dtype", po::value(&c.param_dtype)->default_value(c.param_dtype),
       "fp32 or bf16: parameters as gathered and computed with (the master copy stays fp32)")
      ("shard.reduce_dtype", po::value(&c.reduce_dtype)->default_value(c.reduce_dtype),
       "fp32 or bf16: gradients as reduced across ranks")
      ("shard.bucket_mb", po::value(&c.bucket_mb)->default_value(c.bucket_mb),
       "the largest unit allowed, in MiB of gathered parameters (0: no limit)")
      ("shard.inflight_mb", po::value(&c.inflight_mb)->default_value(c.inflight_mb),
       "stages 2, 3: MiB of gradients being reduced at once; past it backward waits (memory vs overlap)");
  run.add_options()
      ("run.output_dir", po::value(&c.output_dir)->default_value(""), "default checkpoints/<job name>")
      ("run.checkpoint_every", po::value(&c.checkpoint_every)->default_value(0),
       "steps between sharded checkpoints (0: none); with > 0 also one at the end and on SIGTERM/SIGUSR1")
      ("run.keep_last", po::value(&c.keep_last)->default_value(2), "complete checkpoints kept")
      ("run.resume", po::value(&c.resume)->default_value("none"), "none, auto (newest complete checkpoint) or DIR")
      ("run.allow_job_change", po::value(&c.allow_job_change)->default_value(false),
       "resume a checkpoint written by a different job configuration");
  po::options_description all("job keys (in the job file, or as --section.key value)");
  all.add(model).add(lora).add(data).add(loss).add(optim).add(train).add(shard).add(run);
  return all;
}

// "loss.foo" -> "FILE:LINE" of the line "foo = ..." under "[loss]" of the job text, for error messages.
std::string locate(const std::string& file, const std::string& text, const std::string& key) {
  auto dot = key.find('.');
  if (dot == std::string::npos) return file;
  const std::string section = key.substr(0, dot), name = key.substr(dot + 1);
  std::string current, line;
  std::istringstream in(text);
  for (int number = 1; std::getline(in, line); ++number) {
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.rfind('[', 0) == 0) {
      current = line.substr(1, line.find(']') - 1);
    } else if (current == section && line.rfind(name, 0) == 0) {
      auto rest = line.find_first_not_of(" \t", name.size());
      if (rest != std::string::npos && line[rest] == '=') return file + ":" + std::to_string(number);
    }
  }
  return file;
}

void validate(const JobConfig& c) {
  ANGLE_CHECK(c.global_batch > 0, "train.global_batch must be positive (got ", c.global_batch, ")");
  ANGLE_CHECK(c.grad_accum > 0 && c.global_batch % c.grad_accum == 0, "train.global_batch ", c.global_batch,
              " must be divisible by train.grad_accum ", c.grad_accum);
  ANGLE_CHECK(c.epochs > 0 || c.max_steps > 0, "train.epochs or train.max_steps must be positive");
  ANGLE_CHECK(c.lr > 0, "optim.lr must be positive (got ", c.lr, ")");
  ANGLE_CHECK(c.warmup_steps >= 0, "optim.warmup_steps must be >= 0");
  ANGLE_CHECK(c.log_every > 0, "train.log_every must be positive");
  ANGLE_CHECK(c.checkpoint_every >= 0 && c.keep_last >= 1, "run.checkpoint_every must be >= 0 and run.keep_last >= 1");
  ANGLE_CHECK(c.stage >= 1 && c.stage <= 3, "shard.stage ", c.stage, ": must be 1, 2 or 3");
  for (auto [key, value] : {std::pair{"shard.param_dtype", &c.param_dtype}, {"shard.reduce_dtype", &c.reduce_dtype}})
    ANGLE_CHECK(*value == "fp32" || *value == "bf16", key, " '", *value, "': must be fp32 or bf16");
  ANGLE_CHECK(c.bucket_mb >= 0, "shard.bucket_mb must be >= 0 (0: no limit)");
  ANGLE_CHECK(c.inflight_mb > 0, "shard.inflight_mb must be positive");
  ANGLE_CHECK(c.format.empty() || c.format == "A" || c.format == "B" || c.format == "C", "data.format '", c.format,
              "': A (text1, text2, label), B (query, positive) or C (query, positive, negative)");
  ANGLE_CHECK(c.weight_mode == "none" || c.weight_mode == "confidence", "data.weight_mode '", c.weight_mode,
              "' (none or confidence)");
  ANGLE_CHECK(c.label_norm == "none" || c.label_norm == "range", "data.label_norm '", c.label_norm, "' (none or range)");
  ANGLE_CHECK(c.chunk >= 0, "train.chunk must be >= 0 (0: off)");
  ANGLE_CHECK(c.dtype == "fp32" || c.dtype == "bf16", "model.dtype '", c.dtype, "' (fp32 or bf16)");
  ANGLE_CHECK(c.angle_reduction == "sum" || c.angle_reduction == "mean", "loss.angle_reduction '", c.angle_reduction,
              "' (sum or mean)");
  ANGLE_CHECK(!c.dropout || (*c.dropout >= 0 && *c.dropout < 1), "model.dropout must be in [0, 1)");
  ANGLE_CHECK(c.lora_r >= 0, "lora.r must be >= 0 (0: no LoRA; got ", c.lora_r, ")");
  if (c.lora_r > 0 || !c.lora_init.empty()) (void)lora_config(c);
  data::check_prompt("data.text_prompt", c.text_prompt);
  data::check_prompt("data.query_prompt", c.query_prompt);
  data::check_prompt("data.doc_prompt", c.doc_prompt);
  ANGLE_CHECK(!(c.label_norm == "range" && c.label_mode == "legacy-int"), "data.label_norm = range maps labels into "
              "[0, 1], where loss.label_mode = legacy-int would truncate all but the largest to 0; use one of them");
}

}  // namespace

std::string job_help() {
  JobConfig c;
  std::ostringstream out;
  out << describe(c);
  return out.str();
}

std::optional<JobConfig> parse_job(const std::string& file, const std::vector<std::string>& overrides) {
  std::ifstream in(file);
  ANGLE_CHECK(in.good(), file, ": cannot open job file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_job_text(text.str(), file, overrides);
}

// Boost.Program_options formats its messages by replacing placeholders (%value%, %option%,
// %invalid_line%, ...) until none is left: a job whose text holds such a token makes the first error
// message loop forever. Any %name% (letters and underscores) is rejected before Boost sees it.
void reject_boost_placeholders(const std::string& text, const std::string& where) {
  for (size_t at = text.find('%'); at != std::string::npos; at = text.find('%', at + 1)) {
    size_t end = at + 1;
    while (end < text.size() && (std::isalpha(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
    if (end == at + 1 || end >= text.size() || text[end] != '%') continue;
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    ANGLE_FAIL(where, where == "command line" ? "" : ":" + std::to_string(line), ": '", text.substr(at, end + 1 - at),
               "' cannot appear in a job's keys or values");
  }
}

JobConfig parse_job_text(const std::string& text, const std::string& file, const std::vector<std::string>& overrides) {
  reject_boost_placeholders(text, file);
  for (const auto& o : overrides) reject_boost_placeholders(o, "command line");
  JobConfig c;
  po::options_description description = describe(c);
  po::variables_map vm;
  // A key given twice on the command line takes its last value (sweep scripts append overrides).
  std::vector<std::string> last_wins;
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < overrides.size(); ++i) {
    std::string key = overrides[i], value;
    if (auto eq = key.find('='); key.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = key.substr(eq + 1), key = key.substr(0, eq);
    } else {
      ANGLE_CHECK(key.rfind("--", 0) == 0 && i + 1 < overrides.size(), "command line: expected --section.key value, got '",
                  key, "'");
      value = overrides[++i];
    }
    if (auto it = position.find(key); it != position.end()) {
      last_wins[it->second + 1] = value;
    } else {
      position[key] = last_wins.size();
      last_wins.push_back(key);
      last_wins.push_back(value);
    }
  }
  try {
    po::store(po::command_line_parser(last_wins).options(description).run(), vm);  // first stored value wins
  } catch (const po::error& e) {
    ANGLE_FAIL("command line: ", e.what());
  }
  std::istringstream in(text);
  try {
    po::store(po::parse_config_file(in, description), vm);
  } catch (const po::error_with_option_name& e) {
    ANGLE_FAIL(locate(file, text, e.get_option_name().substr(e.get_option_name().rfind('-') + 1)), ": ", e.what());
  } catch (const po::error& e) {
    ANGLE_FAIL(file, ": ", e.what());
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    ANGLE_FAIL(file, ": ", e.what());
  }
  c.job_file = file;
  c.job_name = std::filesystem::path(file).stem().string();
  if (c.output_dir.empty()) c.output_dir = "checkpoints/" + c.job_name;
  validate(c);
  return c;
}

std::string JobConfig::dump() const {
  std::ostringstream o;
  o << "# resolved configuration of " << job_file << "\n";
  auto section = [&](const char* name) { o << "\n[" << name << "]\n"; };
  auto key = [&](const char* name, const auto& value) { o << name << " = " << value << "\n"; };
  auto optional = [&](const char* name, const auto& value) {
    if (value) key(name, *value);
  };
  section("model");
  key("path", model_path), optional("pooling", pooling), optional("max_length", max_length), key("dtype", dtype);
  optional("dropout", dropout), optional("is_llm", is_llm);
  section("lora");
  key("r", lora_r), optional("alpha", lora_alpha), optional("dropout", lora_dropout);
  optional("target_modules", lora_target_modules), key("init", lora_init);
  section("data");
  key("train", train), key("mix_weights", mix_weights), key("dev", dev), key("test", test), key("format", format);
  key("filter_duplicate", filter_duplicate), key("text_prompt", text_prompt), key("query_prompt", query_prompt);
  key("doc_prompt", doc_prompt), key("weight_mode", weight_mode), key("source_weights", source_weights);
  key("label_norm", label_norm), key("label_ranges", label_ranges);
  section("loss");
  key("preset", preset), optional("cosine_w", cosine_w), optional("ibn_w", ibn_w), optional("cln_w", cln_w);
  optional("angle_w", angle_w), optional("cosine_tau", cosine_tau), optional("ibn_tau", ibn_tau);
  optional("angle_tau", angle_tau), key("label_mode", label_mode), key("angle_reduction", angle_reduction);
  key("local_negatives", local_negatives);
  section("optim");
  key("lr", lr), key("weight_decay", weight_decay), key("warmup_steps", warmup_steps);
  key("max_grad_norm", max_grad_norm), key("adam_beta1", adam_beta1), key("adam_beta2", adam_beta2);
  key("adam_eps", adam_eps);
  section("train");
  key("global_batch", global_batch), key("grad_accum", grad_accum), key("epochs", epochs), key("max_steps", max_steps);
  key("seed", seed), key("eval_every", eval_every), key("log_every", log_every), key("chunk", chunk);
  optional("threads", threads);
  key("device", device), key("backend", backend), key("comm_timeout", comm_timeout);
  section("shard");
  key("stage", stage), key("param_dtype", param_dtype), key("reduce_dtype", reduce_dtype), key("bucket_mb", bucket_mb);
  key("inflight_mb", inflight_mb);
  section("run");
  key("output_dir", output_dir), key("checkpoint_every", checkpoint_every), key("keep_last", keep_last);
  key("resume", resume), key("allow_job_change", allow_job_change);
  return o.str();
}

model::LoraConfig lora_config(const JobConfig& c) {
  model::LoraConfig lora;
  if (!c.lora_init.empty()) {
    lora = model::read_adapter_config(c.lora_init);
    const std::string where = "lora.init " + c.lora_init;
    ANGLE_CHECK(c.lora_r == 0 || c.lora_r == lora.r, "lora.r ", c.lora_r, " differs from the r ", lora.r, " of ", where);
    ANGLE_CHECK(!c.lora_alpha || *c.lora_alpha == lora.alpha, "lora.alpha ", *c.lora_alpha, " differs from the alpha ",
                lora.alpha, " of ", where);
    ANGLE_CHECK(!c.lora_target_modules ||
                    model::parse_target_modules(*c.lora_target_modules, "lora.target_modules") == lora.target_modules,
                "lora.target_modules '", c.lora_target_modules.value_or(""), "' differs from those of ", where);
  } else {
    lora.r = c.lora_r;
    if (lora.r == 0) return lora;
    if (c.lora_alpha) lora.alpha = *c.lora_alpha;
    if (c.lora_target_modules) lora.target_modules = model::parse_target_modules(*c.lora_target_modules, "lora.target_modules");
  }
  if (c.lora_dropout) lora.dropout = *c.lora_dropout;
  lora.validate("[lora]");
  return lora;
}

model::EncoderOptions encoder_options(const JobConfig& c) {
  model::EncoderOptions options;
  options.pooling = c.pooling;
  options.max_length = c.max_length;
  options.dropout = c.dropout;
  options.device = c.device;
  options.lora = lora_config(c);
  options.lora_init = c.lora_init;
  options.lora_seed = c.seed;
  return options;
}

uint64_t JobConfig::identity_hash() const {
  std::string text = dump();
  text = text.substr(0, text.find("\n[shard]"));  // drop the [shard] and [run] sections
  for (const char* volatile_key : {"threads = ", "backend = ", "comm_timeout = ", "device = ", "chunk = "}) {
    for (size_t at = text.find(volatile_key); at != std::string::npos; at = text.find(volatile_key)) {
      size_t end = text.find('\n', at);
      text.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
    }
  }
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

}  // namespace angle::train
