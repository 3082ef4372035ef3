// LoRA (Hu et al., 2021) on a decoder's projections, as peft applies it to a Linear layer:
//   y = W x + b + (alpha / r) · B A dropout(x),   A: [r, in], B: [out, r]
// The base weights are frozen (requires_grad false: no gradient, no optimizer state); only A and B
// train. Adapters are named as peft names them inside the base model
// ("layers.0.self_attn.q_proj.lora_A.weight"), and read and written as a PEFT adapter directory
// (adapter_config.json + adapter_model.safetensors) that peft loads onto the base model.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace angle::model {

class Backbone;

struct LoraConfig {
  int64_t r = 0;  // 0: no adapters (full fine-tuning)
  double alpha = 32, dropout = 0.1;  // angle-emb's defaults (r 32 there too)
  std::vector<std::string> target_modules = all_projections();
  std::string base_model;  // adapter_config.json's base_model_name_or_path

  bool enabled() const { return r > 0; }
  double scaling() const { return alpha / static_cast<double>(r); }
  bool targets(const std::string& projection) const;
  // The projections of a LLaMA-family layer that can take an adapter (angle-emb's default is
  // every Linear but lm_head, i.e. all seven).
  static std::vector<std::string> all_projections();
  // Checks r, alpha, dropout and that every target names a projection; `where` names the source.
  void validate(const std::string& where) const;
};

// Parses a comma-separated list of projection names ("q_proj,v_proj"; "all" for every one).
std::vector<std::string> parse_target_modules(const std::string& list, const std::string& where);

// The PEFT adapter in `dir`: its config (r, lora_alpha, lora_dropout, target_modules, and the
// base model) — one-line errors for what peft features angle does not implement (DoRA, rsLoRA,
// bias other than "none", layers_to_transform, per-layer ranks).
LoraConfig read_adapter_config(const std::string& dir);
bool is_adapter_dir(const std::string& dir);

// The adapter's tensors under peft's key for a parameter name (adapter_model.safetensors of a
// …ForCausalLM base: "base_model.model.model.<name>", or of a base model: "base_model.model.<name>").
std::vector<std::string> peft_keys(const std::string& name);

// Writes adapter_config.json + adapter_model.safetensors (the model's adapters only) into `dir`.
void write_adapter(const Backbone& model, const LoraConfig& lora, const std::string& dir);

// Fresh adapters as peft initialises them: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with
// a = sqrt(5)) and B = 0, from a generator seeded with `seed` alone, so that every rank and every
// world size starts from the same adapters.
void init_adapters(Backbone& model, uint64_t seed);
// The adapters stored in the PEFT directory `dir` (an error names a missing or misshapen one).
void load_adapters(Backbone& model, const std::string& dir);

// The low-rank update of one projection: scaling · B A x, where x is the projection's input after
// the adapter's dropout (in training).
at::Tensor lora_delta(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double scaling);

bool is_adapter_param(const std::string& name);  // "….lora_A.weight" / "….lora_B.weight"

// The base model's parameters with the adapters folded in (W + scaling · B A) and the adapters
// left out: the full model that `angle export --merge` writes.
std::vector<std::pair<std::string, at::Tensor>> merged_parameters(const Backbone& model, const LoraConfig& lora);

}  // namespace angle::model
