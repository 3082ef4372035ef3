#include "model/encoder.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"
#include "model/bert.h"
#include "model/decoder.h"
#include "model/native_bf16.h"
#include "model/embedding_file.h"
#include "model/storage.h"
#include "model/weights.h"

namespace angle::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// sentence-transformers' module list, or empty for a plain HF directory.
json read_modules(const fs::path& dir) {
  fs::path path = dir / "modules.json";
  return fs::exists(path) ? read_json_file(path.string()) : json::array();
}

// The pooling a directory's sentence-transformers files name; else `fallback` (BERT: cls, a
// decoder: last).
Pooling default_pooling(const fs::path& dir, const json& modules, const std::string& fallback) {
  fs::path config = dir / "1_Pooling" / "config.json";
  for (const json& m : modules)
    if (m.value("type", "").ends_with("Pooling")) config = dir / m.value("path", "1_Pooling") / "config.json";
  if (!fs::exists(config)) return Pooling::parse(fallback);
  json j = read_json_file(config.string());
  std::vector<std::string> modes;
  for (auto [key, name] : {std::pair{"pooling_mode_cls_token", "cls"}, {"pooling_mode_mean_tokens", "mean"},
                           {"pooling_mode_max_tokens", "max"}, {"pooling_mode_lasttoken", "last"},
                           {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"},
                           {"pooling_mode_weightedmean_tokens", "weightedmean"}})
    if (j.value(key, false)) modes.push_back(name);
  ANGLE_CHECK(modes.size() == 1, config.string(), ": expected exactly one pooling mode, found ", modes.size());
  ANGLE_CHECK(modes[0] != "mean_sqrt_len" && modes[0] != "weightedmean", config.string(), ": pooling mode '", modes[0],
              "' is not supported; pass --pooling explicitly");
  return Pooling::parse(modes[0]);
}

at::Device parse_device(const std::string& name) {
  ANGLE_CHECK(name == "cpu" || name.rfind("cuda", 0) == 0, "unknown device '", name, "' (cpu, cuda or cuda:N)");
  at::Device device(name);
  ANGLE_CHECK(device.is_cpu() || at::hasCUDA(), "device '", name, "' requested but no CUDA device is available");
  return device;
}

}  // namespace

size_t default_max_length(const std::string& model_dir, const text::Tokenizer& tokenizer, int64_t max_positions) {
  const fs::path dir(model_dir);
  size_t limit = static_cast<size_t>(max_positions);
  fs::path st_config = dir / "sentence_bert_config.json";
  if (fs::exists(st_config)) {
    json j = read_json_file(st_config.string());
    if (j.contains("max_seq_length") && j["max_seq_length"].is_number_integer())
      return std::min(limit, j["max_seq_length"].get<size_t>());
  }
  return std::min(limit, tokenizer.model_max_length());
}

TokenBatch collate(const std::vector<const std::vector<int64_t>*>& sequences, int64_t pad_id, PaddingSide side) {
  size_t width = 0;
  for (const auto* s : sequences) width = std::max(width, s->size());
  const auto batch = static_cast<int64_t>(sequences.size());
  at::Tensor ids = at::full({batch, static_cast<int64_t>(width)}, pad_id, at::kLong);
  at::Tensor mask = at::zeros({batch, static_cast<int64_t>(width)}, at::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const size_t offset = side == PaddingSide::left ? width - sequences[b]->size() : 0;
    for (size_t t = 0; t < sequences[b]->size(); ++t) {
      ids_a[b][offset + t] = (*sequences[b])[t];
      mask_a[b][offset + t] = 1;
    }
  }
  return {ids, mask};
}

TokenBatch Encoder::collate(const std::vector<const std::vector<int64_t>*>& sequences) const {
  return model::collate(sequences, tokenizer.pad_id(), tokenizer.padding_side());
}

at::Tensor Encoder::embed(const TokenBatch& batch) const {
  at::Tensor ids = batch.input_ids.to(device), mask = batch.attention_mask.to(device);
  at::Tensor pooled = pool(model->forward(ids, mask), mask, pooling, tokenizer.padding_side()).to(at::kFloat);
  if (dim > 0) pooled = pooled.narrow(1, 0, dim);
  return normalize ? pooled / pooled.norm(2, -1, true).clamp_min(1e-12) : pooled;
}

const BertConfig& Encoder::bert_config(const std::string& what) const {
  const auto* bert = dynamic_cast<const BertModel*>(model.get());
  ANGLE_CHECK(bert, what, " supports BERT-family models only; ", dir, " is a decoder");
  return bert->config();
}

bool is_decoder_dir(const std::string& dir) {
  const fs::path config_path = fs::path(dir) / "config.json";
  ANGLE_CHECK(fs::exists(config_path), config_path.string(), ": missing (not a HuggingFace model directory?)");
  const json config = read_json_file(config_path.string());
  return DecoderConfig::is_decoder(json_field_or<std::string>(config, "model_type", "", config_path.string()));
}

namespace {

// The base model of a PEFT adapter directory: base_model_name_or_path, as a path of its own or
// relative to the adapter directory.
std::string adapter_base(const std::string& adapter_dir, const std::string& base) {
  const std::string config = (fs::path(adapter_dir) / "adapter_config.json").string();
  ANGLE_CHECK(!base.empty(), config, ": base_model_name_or_path is empty (angle needs the base model's directory)");
  if (fs::is_directory(base)) return base;
  const fs::path relative = fs::path(adapter_dir) / base;
  ANGLE_CHECK(fs::is_directory(relative), config, ": base_model_name_or_path '", base,
              "' is not a directory (a hub name cannot be fetched; give a local path)");
  return relative.string();
}

}  // namespace

Encoder load_encoder(const std::string& dir_name, const EncoderOptions& options) {
  fs::path dir(dir_name);
  ANGLE_CHECK(fs::is_directory(dir), dir_name, ": model directory does not exist");
  LoraConfig lora = options.lora;
  std::string base_dir = dir_name, adapters_from = options.lora_init;
  if (is_adapter_dir(dir_name)) {  // a PEFT adapter: its base model, then its adapters
    ANGLE_CHECK(!lora.enabled(), dir_name, " is a LoRA adapter already; train from its base model with [lora] init = ",
                dir_name);
    lora = read_adapter_config(dir_name);
    base_dir = adapter_base(dir_name, lora.base_model);
    adapters_from = dir_name;
  }
  const fs::path config_path = fs::path(base_dir) / "config.json";
  const bool is_llm = is_decoder_dir(base_dir);
  ANGLE_CHECK(!lora.enabled() || is_llm, "LoRA adapters are supported on LLaMA-family decoders only; ", base_dir,
              " is a BERT-family model");
  const EmbeddingSettings settings = read_embedding_settings(dir_name);
  std::optional<int64_t> bidirectional_from = options.bidirectional_from;
  if (!bidirectional_from) bidirectional_from = settings.bidirectional_from;
  if (!bidirectional_from && !adapters_from.empty()) bidirectional_from = read_embedding_settings(adapters_from).bidirectional_from;
  ANGLE_CHECK(!bidirectional_from || is_llm, "bidirectional_from (BiLLM) applies to LLaMA-family decoders; ", base_dir,
              " is a BERT-family model");
  std::shared_ptr<Backbone> model;
  if (is_llm) {
    DecoderConfig config = DecoderConfig::from_file(config_path.string());
    if (options.dropout) config.attention_dropout = *options.dropout;
    if (bidirectional_from) config.set_bidirectional_from(*bidirectional_from);
    model = std::make_shared<DecoderModel>(config, lora);
  } else {
    BertConfig config = BertConfig::from_file(config_path.string());
    if (options.dropout) config.hidden_dropout_prob = config.attention_probs_dropout_prob = *options.dropout;
    model = std::make_shared<BertModel>(config, /*initialise=*/false);
  }
  const auto weights = std::make_shared<const ModelWeights>(ModelWeights::from_dir(base_dir));
  text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(base_dir);
  ANGLE_CHECK(tokenizer.vocab_size() <= static_cast<size_t>(model->vocab_size()), tokenizer.source(), ": ",
              tokenizer.vocab_size(), " tokens but ", config_path.string(), " has vocab_size ", model->vocab_size());
  json modules = read_modules(dir);
  std::shared_ptr<const ParameterFiles> files = model->locate_weights(weights);  // checks names and shapes
  if (options.defer_weights) {  // released before anything wrote them: their pages never became resident
    for (const auto& [name, param] : model->named_parameters())
      if (files->holds(name)) free_storage(param);
  } else {
    files->copy_into(model->named_parameters());
  }
  if (lora.enabled()) {
    if (adapters_from.empty()) init_adapters(*model, options.lora_seed);
    else load_adapters(*model, adapters_from);
  }

  Encoder encoder{dir_name, std::move(tokenizer), std::move(model), Pooling{}, false, 512, "", 0, at::kCPU, at::kFloat, {},
                  is_llm, options.defer_weights ? std::move(files) : nullptr};
  encoder.prompt = options.prompt.value_or(settings.prompt);
  text::check_prompt("prompt", encoder.prompt);
  encoder.pooling = options.pooling ? Pooling::parse(*options.pooling) : default_pooling(dir, modules, is_llm ? "last" : "cls");
  bool has_normalize = false;
  for (const json& m : modules) has_normalize = has_normalize || m.value("type", "").ends_with("Normalize");
  encoder.normalize = options.normalize.value_or(has_normalize);
  const int64_t positions = encoder.model->max_positions();
  encoder.max_length = options.max_length.value_or(default_max_length(dir, encoder.tokenizer, positions));
  ANGLE_CHECK(encoder.max_length <= static_cast<size_t>(positions), "max length ", encoder.max_length,
              " exceeds the model's position limit ", positions, " (max_position_embeddings in ", config_path.string(), ")");
  const size_t specials = encoder.tokenizer.encode("", encoder.max_length).size();
  ANGLE_CHECK(encoder.max_length > specials, "max length ", encoder.max_length, " leaves no room for text besides the ",
              specials, " special tokens");
  const int64_t width = encoder.model->hidden_size();
  const std::optional<int64_t> dim = options.dim ? options.dim : settings.truncate_dim;
  ANGLE_CHECK(!dim || (*dim > 0 && *dim <= width), "embedding size ", dim.value_or(0), " (--dim / truncate_dim of ",
              dir_name, ") must be in 1..", width, ", the model's hidden size");
  encoder.dim = dim.value_or(0);
  const std::vector<int64_t> matryoshka_dims = options.matryoshka_dims.value_or(settings.matryoshka_dims);
  encoder.device = parse_device(options.device);
  encoder.dtype = resolve_dtype(options.dtype, encoder.device) == "bf16" ? at::kBFloat16 : at::kFloat;
  encoder.export_spec = {base_dir, encoder.pooling, encoder.normalize, encoder.max_length, lora, {encoder.prompt, bidirectional_from, dim, matryoshka_dims}};
  encoder.model->to(encoder.device, encoder.dtype);
  return encoder;
}

}  // namespace angle::model
