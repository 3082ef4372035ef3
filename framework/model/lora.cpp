#include "model/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/atomic_output.h"
#include "core/error.h"
#include "core/json_file.h"
#include "model/backbone.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace angle::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Targets in the order of a layer's projections, each once: equal sets compare equal.
std::vector<std::string> canonical(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const auto& p : LoraConfig::all_projections())
    if (std::find(targets.begin(), targets.end(), p) != targets.end()) out.push_back(p);
  return out;
}

}  // namespace

std::vector<std::string> LoraConfig::all_projections() {
  return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
}

bool LoraConfig::targets(const std::string& projection) const {
  return enabled() && std::find(target_modules.begin(), target_modules.end(), projection) != target_modules.end();
}

void LoraConfig::validate(const std::string& where) const {
  ANGLE_CHECK(r > 0, where, ": LoRA r must be positive (got ", r, ")");
  ANGLE_CHECK(std::isfinite(alpha) && alpha > 0, where, ": LoRA alpha must be positive (got ", alpha, ")");
  ANGLE_CHECK(dropout >= 0 && dropout < 1, where, ": LoRA dropout must be in [0, 1) (got ", dropout, ")");
  ANGLE_CHECK(!target_modules.empty(), where, ": LoRA target_modules is empty");
  const auto known = all_projections();
  for (const auto& t : target_modules)
    ANGLE_CHECK(std::find(known.begin(), known.end(), t) != known.end(), where, ": LoRA target module '", t,
                "' matches no projection of a LLaMA-family layer (", join(known), ")");
}

std::vector<std::string> parse_target_modules(const std::string& list, const std::string& where) {
  if (list == "all" || list == "all-linear") return LoraConfig::all_projections();
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty() && std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  LoraConfig probe;
  probe.r = 1;
  probe.target_modules = out;
  probe.validate(where);
  return canonical(out);
}

bool is_adapter_dir(const std::string& dir) { return fs::exists(fs::path(dir) / kConfigFile); }

LoraConfig read_adapter_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / kConfigFile).string();
  const json j = read_json_file(path);
  ANGLE_CHECK(j.value("peft_type", "LORA") == "LORA", path, ": peft_type '", j.value("peft_type", ""),
              "' (only LORA adapters are supported)");
  for (const char* flag : {"use_dora", "use_rslora", "fan_in_fan_out"})
    ANGLE_CHECK(!j.value(flag, false), path, ": ", flag, " is true (not supported)");
  ANGLE_CHECK(j.value("bias", "none") == "none", path, ": bias '", j.value("bias", ""), "' (only \"none\" is supported)");
  for (const char* field : {"layers_to_transform", "modules_to_save"})
    ANGLE_CHECK(!j.contains(field) || j[field].is_null(), path, ": ", field, " is set (not supported)");
  for (const char* field : {"rank_pattern", "alpha_pattern"})
    ANGLE_CHECK(!j.contains(field) || j[field].is_null() || j[field].empty(), path, ": ", field, " is set (not supported)");
  LoraConfig c;
  c.r = json_field<int64_t>(j, "r", path);
  c.alpha = json_field<double>(j, "lora_alpha", path);
  c.dropout = json_field_or<double>(j, "lora_dropout", 0.0, path);
  c.base_model = json_field_or<std::string>(j, "base_model_name_or_path", "", path);
  const json& targets = j.contains("target_modules") ? j["target_modules"] : json();
  if (targets.is_string()) {
    c.target_modules = parse_target_modules(targets.get<std::string>(), path + " (target_modules)");
  } else {
    ANGLE_CHECK(targets.is_array(), path, ": target_modules must be a list of projection names");
    c.target_modules.clear();
    for (const json& t : targets) {
      ANGLE_CHECK(t.is_string(), path, ": target_modules must be a list of projection names");
      c.target_modules.push_back(t.get<std::string>());
    }
  }
  c.validate(path);
  c.target_modules = canonical(c.target_modules);
  return c;
}

std::vector<std::string> peft_keys(const std::string& name) {
  return {"base_model.model.model." + name, "base_model.model." + name};
}

bool is_adapter_param(const std::string& name) {
  return name.ends_with(".lora_A.weight") || name.ends_with(".lora_B.weight");
}

void write_adapter(const Backbone& model, const LoraConfig& lora, const std::string& dir) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, param] : model.named_parameters())
    if (is_adapter_param(name)) tensors[peft_keys(name).front()] = param.detach().to(at::kCPU, at::kFloat);
  ANGLE_CHECK(!tensors.empty(), dir, ": the model has no LoRA adapters to write");
  fs::create_directories(dir);
  write_safetensors((fs::path(dir) / kWeightsFile).string(), tensors, {{"format", "pt"}});
  // What peft 0.18's LoraConfig writes, with the fields angle does not use at their defaults.
  const json config = {{"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"base_model_name_or_path", lora.base_model},
                       {"r", lora.r}, {"lora_alpha", lora.alpha}, {"lora_dropout", lora.dropout},
                       {"target_modules", lora.target_modules}, {"bias", "none"}, {"fan_in_fan_out", false},
                       {"inference_mode", true}, {"init_lora_weights", true}, {"use_dora", false},
                       {"use_rslora", false}, {"modules_to_save", nullptr}, {"layers_to_transform", nullptr},
                       {"rank_pattern", json::object()}, {"alpha_pattern", json::object()}};
  write_atomically((fs::path(dir) / kConfigFile).string(), config.dump(2) + "\n");
}

void init_adapters(Backbone& model, uint64_t seed) {
  c10::NoGradGuard no_grad;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, param] : model.named_parameters()) {
    if (name.ends_with(".lora_B.weight")) param.zero_();
    if (!name.ends_with(".lora_A.weight")) continue;
    const double bound = 1.0 / std::sqrt(static_cast<double>(param.size(1)));
    param.copy_(at::empty(param.sizes(), at::kFloat).uniform_(-bound, bound, generator));
  }
}

void load_adapters(Backbone& model, const std::string& dir) {
  const std::string path = (fs::path(dir) / kWeightsFile).string();
  ANGLE_CHECK(fs::exists(path), path, ": missing (a PEFT adapter directory holds adapter_model.safetensors)");
  std::vector<std::pair<std::string, at::Tensor>> adapters;
  for (const auto& item : model.named_parameters())
    if (is_adapter_param(item.first)) adapters.push_back(item);
  ParameterFiles(std::make_shared<ModelWeights>(path), adapters, peft_keys, (fs::path(dir) / kConfigFile).string())
      .copy_into(adapters);
}

at::Tensor lora_delta(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double scaling) {
  at::Tensor delta = at::linear(at::linear(x, a), b);
  // In place: no second output-sized tensor; none at all at alpha = r, the LLM default.
  return scaling == 1.0 ? delta : delta.mul_(scaling);
}

std::vector<std::pair<std::string, at::Tensor>> merged_parameters(const Backbone& model, const LoraConfig& lora) {
  c10::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> adapters;
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, param] : model.named_parameters()) {
    if (is_adapter_param(name)) adapters[name] = param.detach().to(at::kCPU, at::kFloat);
    else out.emplace_back(name, param.detach().to(at::kCPU, at::kFloat));
  }
  for (auto& [name, weight] : out) {
    if (!name.ends_with(".weight")) continue;
    const std::string stem = name.substr(0, name.size() - std::string("weight").size());
    auto a = adapters.find(stem + "lora_A.weight"), b = adapters.find(stem + "lora_B.weight");
    if (a == adapters.end() || b == adapters.end()) continue;
    weight = weight + at::mm(b->second, a->second) * lora.scaling();
  }
  return out;
}

}  // namespace angle::model
