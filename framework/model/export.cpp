#include "model/export.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "model/safetensors.h"

namespace angle::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_json(const fs::path& path, const json& value) {
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  ANGLE_CHECK(out.good(), path.string(), ": write failed");
}

const char* st_mode(const Pooling& pooling) {
  switch (pooling.kind) {
    case PoolingKind::cls: return "pooling_mode_cls_token";
    case PoolingKind::mean: return "pooling_mode_mean_tokens";
    case PoolingKind::max: return "pooling_mode_max_tokens";
    case PoolingKind::last: return "pooling_mode_lasttoken";
    default: return nullptr;
  }
}

}  // namespace

void check_exportable(const Pooling& pooling) {
  ANGLE_CHECK(st_mode(pooling), "pooling '", pooling.name(),
              "' has no sentence-transformers equivalent (cls, mean, max or last can be exported)");
}

void save_model_dir(const Backbone& model, const ExportSpec& spec, const std::string& out_dir, bool merge) {
  check_exportable(spec.pooling);
  fs::path out(out_dir), tmp(out_dir + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "1_Pooling");
  fs::path source(spec.source_dir);
  const bool adapter = spec.lora.enabled() && !merge;
  for (const char* name : {"config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                           "special_tokens_map.json"})
    if (fs::exists(source / name) && !(adapter && std::string(name) == "config.json"))
      fs::copy_file(source / name, tmp / name);

  if (adapter) {
    LoraConfig lora = spec.lora;
    lora.base_model = fs::absolute(source).lexically_normal().string();
    write_adapter(model, lora, tmp.string());
  } else {
    std::map<std::string, at::Tensor> tensors;
    for (const auto& [name, param] : merged_parameters(model, spec.lora)) tensors[name] = param;
    write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
  }

  json pooling = {{"word_embedding_dimension", model.hidden_size()}, {"pooling_mode_cls_token", false},
                  {"pooling_mode_mean_tokens", false}, {"pooling_mode_max_tokens", false},
                  {"pooling_mode_mean_sqrt_len_tokens", false}, {"pooling_mode_weightedmean_tokens", false},
                  {"pooling_mode_lasttoken", false}};
  pooling[st_mode(spec.pooling)] = true;
  write_json(tmp / "1_Pooling" / "config.json", pooling);
  json modules = json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                              {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}}});
  if (spec.normalize) {
    modules.push_back({{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}});
    fs::create_directories(tmp / "2_Normalize");
  }
  write_json(tmp / "modules.json", modules);
  bool lower = false;
  if (fs::exists(source / "sentence_bert_config.json"))
    lower = read_json_file((source / "sentence_bert_config.json").string()).value("do_lower_case", false);
  write_json(tmp / "sentence_bert_config.json", {{"max_seq_length", spec.max_length}, {"do_lower_case", lower}});
  write_embedding_files(tmp.string(), spec.embedding);

  // Replace any previous export only once the new one is complete.
  fs::path old(out_dir + ".old-" + std::to_string(::getpid()));
  if (fs::exists(out)) fs::rename(out, old);
  fs::rename(tmp, out);
  fs::remove_all(old);
}

}  // namespace angle::model
