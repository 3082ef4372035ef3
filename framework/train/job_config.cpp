#include "train/job_config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "data/raw_dataset.h"
#include "shard/shard_groups.h"
#include "text/tokenizer.h"
#include "train/job_keys.h"

namespace angle::train {
namespace po = boost::program_options;
namespace {

po::options_description describe(JobConfig& c) {
  po::options_description all("job keys (in the job file, or as --section.key value)");
  std::optional<po::options_description> group;  // the keys of one section
  std::string section;
  for (const JobKey& k : job_keys()) {
    if (k.section != section) {
      if (group) all.add(*group);
      group.emplace(section_caption(section = k.section));
    }
    group->add_options()(k.option().c_str(), k.parser(c), k.help);
  }
  if (group) all.add(*group);
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

// What a key's type cannot say (the types' own values were checked as they were parsed).
void check_values(const JobConfig& c) {
  ANGLE_CHECK(c.global_batch > 0, "train.global_batch must be positive (got ", c.global_batch, ")");
  ANGLE_CHECK(c.grad_accum > 0, "train.grad_accum must be positive (got ", c.grad_accum, ")");
  ANGLE_CHECK(c.epochs > 0 || c.max_steps > 0, "train.epochs or train.max_steps must be positive");
  ANGLE_CHECK(c.lr > 0, "optim.lr must be positive (got ", c.lr, ")");
  ANGLE_CHECK(c.warmup_steps >= 0, "optim.warmup_steps must be >= 0");
  ANGLE_CHECK(c.log_every > 0, "train.log_every must be positive");
  ANGLE_CHECK(c.checkpoint_every >= 0 && c.keep_last >= 1, "run.checkpoint_every must be >= 0 and run.keep_last >= 1");
  ANGLE_CHECK(c.bucket_mb >= 0, "shard.bucket_mb must be >= 0 (0: one bucket per unit)");
  ANGLE_CHECK(shard::valid_replicate(c.replicate), "shard.replicate must be 1, node or a positive number of replicas "
              "(got '", c.replicate, "')");
  ANGLE_CHECK(c.inflight_mb > 0, "shard.inflight_mb must be positive");
  ANGLE_CHECK(c.chunk >= 0, "train.chunk must be >= 0 (0: off)");
  check_batch_split(c, 1);
  ANGLE_CHECK(!c.dropout || (*c.dropout >= 0 && *c.dropout < 1), "model.dropout must be in [0, 1)");
  ANGLE_CHECK(!c.bidirectional_from || *c.bidirectional_from >= 0, "model.bidirectional_from must be >= 0 (got ",
              c.bidirectional_from.value_or(0), ")");
  ANGLE_CHECK(c.lora_r >= 0, "lora.r must be >= 0 (0: no LoRA; got ", c.lora_r, ")");
  if (c.lora_r > 0 || !c.lora_init.empty()) (void)lora_config(c);
  text::check_prompt("data.text_prompt", c.text_prompt);
  text::check_prompt("data.query_prompt", c.query_prompt);
  text::check_prompt("data.doc_prompt", c.doc_prompt);
  const bool ese = c.ese.value_or(false);
  ANGLE_CHECK(ese || !(c.ese_pca || c.ese_compression_size || c.ese_kl_temperature),
              "loss.ese_pca, ese_compression_size and ese_kl_temperature apply to loss.ese = true");
  ANGLE_CHECK(!ese || !matryoshka(c).enabled(), "loss.ese and loss.matryoshka_dims are two ways to train truncatable "
              "embeddings; choose one");
  ANGLE_CHECK(!c.ese_compression_size || *c.ese_compression_size > 0, "loss.ese_compression_size must be positive");
  ANGLE_CHECK(!c.ese_kl_temperature || std::isfinite(*c.ese_kl_temperature), "loss.ese_kl_temperature must be finite");
  ANGLE_CHECK(!c.false_negative_margin || c.false_negatives == loss::FalseNegatives::margin,
              "loss.false_negative_margin applies to loss.false_negatives = margin");
  ANGLE_CHECK(!c.false_negative_margin || std::isfinite(*c.false_negative_margin),
              "loss.false_negative_margin must be finite");
  ANGLE_CHECK(!(c.label_norm == LabelNorm::range && c.label_mode == loss::LabelMode::legacy_int),
              "data.label_norm = range maps labels into [0, 1], where loss.label_mode = legacy-int would truncate "
              "all but the largest to 0; use one of them");
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
  check_values(c);
  return c;
}

std::string JobConfig::dump() const {
  std::ostringstream o;
  o << "# resolved configuration of " << job_file << "\n";
  std::string section;
  for (const JobKey& k : job_keys()) {
    if (k.section != section) o << "\n[" << (section = k.section) << "]\n";
    if (const std::optional<std::string> value = k.text(*this)) o << k.name << " = " << *value << "\n";
  }
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

loss::Matryoshka matryoshka(const JobConfig& c) {
  return loss::parse_matryoshka(c.matryoshka_dims.value_or(""), c.matryoshka_weights.value_or(""), "loss.matryoshka");
}

loss::Espresso espresso(const JobConfig& c) {
  loss::Espresso e;
  e.enabled = c.ese.value_or(false);
  e.compression_size = c.ese_compression_size.value_or(e.compression_size);
  e.kl_temperature = c.ese_kl_temperature.value_or(e.kl_temperature);
  e.pca = c.ese_pca.value_or(e.pca);
  return e;
}

model::EncoderOptions encoder_options(const JobConfig& c) {
  model::EncoderOptions options = evaluation_options(c);
  options.dropout = c.dropout;
  options.lora = lora_config(c);
  options.lora_init = c.lora_init;
  options.lora_seed = c.seed;
  return options;
}

model::EncoderOptions evaluation_options(const JobConfig& c) {
  model::EncoderOptions options;
  options.pooling = c.pooling;
  // Texts are evaluated (dev, test, base beside trained) and exported with the prompt they were
  // trained with; a job without one evaluates without, whatever the base model's files say.
  options.prompt = c.text_prompt;
  if (c.bidirectional_from) options.bidirectional_from = *c.bidirectional_from;
  options.matryoshka_dims = matryoshka(c).dims;  // recorded on export: the sizes it was trained for
  options.max_length = c.max_length;
  options.device = c.device.str();
  return options;
}

// Exactly the first release's value, which checkpoints (resume) and sweeps identify jobs by: dump()
// cut before the section that follows the last hashed key ("\n[shard]"); then, for each key before
// the cut that is not hashed, in erase_rank order (threads, backend, comm_timeout, device, chunk),
// every "KEY = " text erased up to and including the end of its line. That text is found anywhere:
// a value (a prompt, a path, the job file's name) that holds it loses its line's rest and newline
// too, as it did, and with two such texts on one line the order shows. FNV-1a 64 of the bytes left.
uint64_t JobConfig::identity_hash() const {
  const std::vector<JobKey>& keys = job_keys();
  size_t last_hashed = 0;
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i].identity.hashed) last_hashed = i;
  size_t cut_row = last_hashed;
  while (cut_row < keys.size() && std::string(keys[cut_row].section) == keys[last_hashed].section) ++cut_row;
  std::string text = dump();
  if (cut_row < keys.size()) text = text.substr(0, text.find("\n[" + std::string(keys[cut_row].section) + "]"));
  std::vector<const JobKey*> dropped;
  for (size_t i = 0; i < cut_row; ++i)
    if (!keys[i].identity.hashed) dropped.push_back(&keys[i]);
  std::stable_sort(dropped.begin(), dropped.end(),
                   [](const JobKey* a, const JobKey* b) { return a->identity.erase_rank < b->identity.erase_rank; });
  for (const JobKey* k : dropped) {
    const std::string line_start = std::string(k->name) + " = ";
    for (size_t at = text.find(line_start); at != std::string::npos; at = text.find(line_start)) {
      const size_t end = text.find('\n', at);
      text.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
    }
  }
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

void check_batch_split(const JobConfig& c, int64_t ranks) {
  const std::string by = ranks == 1 ? "train.grad_accum " + std::to_string(c.grad_accum)
                                    : "ranks x train.grad_accum = " + std::to_string(ranks) + " x " +
                                          std::to_string(c.grad_accum);
  ANGLE_CHECK(c.global_batch % (ranks * c.grad_accum) == 0, "train.global_batch ", c.global_batch,
              " must be divisible by ", by);
  if (c.chunk == 0) return;
  const long per_rank = c.global_batch / c.grad_accum / ranks;
  ANGLE_CHECK(c.chunk <= per_rank && per_rank % c.chunk == 0, "train.chunk ", c.chunk, " must divide the per-rank "
              "micro-batch of ", per_rank, " examples (train.global_batch / train.grad_accum / ", ranks, " ranks)");
}

}  // namespace angle::train
