#include "model/weights.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"
#include "model/safetensors.h"

namespace angle::model {
namespace fs = std::filesystem;

ModelWeights::ModelWeights(const std::string& safetensors_path) {
  files_.push_back(std::make_shared<SafetensorsFile>(safetensors_path));
  for (const auto& [name, info] : files_[0]->tensors()) where_[name] = 0;
  description_ = safetensors_path;
}

ModelWeights::~ModelWeights() = default;

ModelWeights ModelWeights::from_dir(const std::string& dir) {
  const fs::path root(dir), single = root / "model.safetensors", index = root / "model.safetensors.index.json";
  if (fs::exists(single) || !fs::exists(index)) {
    ANGLE_CHECK(fs::exists(single), single.string(), ": missing",
                fs::exists(root / "pytorch_model.bin") ? " (pytorch_model.bin is pickle and is never loaded; convert it "
                                                         "with launch/setup-models.py)" : "");
    return ModelWeights(single.string());
  }
  const nlohmann::json map = json_field<nlohmann::json>(read_json_file(index.string()), "weight_map", index.string());
  ANGLE_CHECK(map.is_object() && !map.empty(), index.string(), ": weight_map must be a non-empty object");
  ModelWeights weights;
  weights.description_ = index.string();
  std::map<std::string, size_t> file_index;
  for (const auto& [name, file] : map.items()) {
    ANGLE_CHECK(file.is_string(), index.string(), ": weight_map['", name, "'] is not a file name");
    const std::string shard = file.get<std::string>();
    ANGLE_CHECK(shard.find('/') == std::string::npos && shard != ".." && shard != ".", index.string(), ": weight_map['",
                name, "'] names '", shard, "', which is not a file of the directory");
    auto [it, added] = file_index.emplace(shard, weights.files_.size());
    if (added) {
      const fs::path path = root / shard;
      ANGLE_CHECK(fs::exists(path), index.string(), ": weight_map names '", shard, "', which is missing from ", dir);
      weights.files_.push_back(std::make_shared<SafetensorsFile>(path.string()));
    }
    ANGLE_CHECK(weights.files_[it->second]->contains(name), index.string(), ": weight_map puts '", name, "' in ", shard,
                ", which does not hold it");
    weights.where_[name] = it->second;
  }
  return weights;
}

const SafetensorsFile& ModelWeights::file_of(const std::string& name) const {
  auto it = where_.find(name);
  ANGLE_CHECK(it != where_.end(), description_, ": no tensor '", name, "'");
  return *files_[it->second];
}

void ModelWeights::read_range(const std::string& name, int64_t first, const at::Tensor& out) const {
  file_of(name).read_range(name, first, out);
}

std::vector<int64_t> ModelWeights::shape(const std::string& name) const { return file_of(name).tensors().at(name).shape; }

std::string ModelWeights::path_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? description_ : files_[it->second]->path();
}

ParameterFiles::ParameterFiles(std::shared_ptr<const ModelWeights> weights,
                               const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                               const std::function<std::vector<std::string>(const std::string&)>& candidates,
                               const std::string& config_source)
    : weights_(std::move(weights)) {
  for (const auto& [name, param] : parameters) {
    std::string found;
    for (const std::string& candidate : candidates(name))
      if (weights_->contains(candidate)) {
        found = candidate;
        break;
      }
    ANGLE_CHECK(!found.empty(), weights_->path_of(name), ": missing tensor '", name, "' required by ", config_source);
    const std::vector<int64_t> shape = weights_->shape(found);
    ANGLE_CHECK(at::IntArrayRef(shape) == param.sizes(), weights_->path_of(found), ": tensor '", found, "' has shape ",
                at::IntArrayRef(shape), " but ", config_source, " implies ", param.sizes());
    stored_[name] = found;
  }
}

void ParameterFiles::read(const std::string& parameter, int64_t first, const at::Tensor& out) const {
  c10::NoGradGuard no_grad;
  auto it = stored_.find(parameter);
  ANGLE_CHECK(it != stored_.end(), "no stored tensor for parameter '", parameter, "'");
  weights_->read_range(it->second, first, out);
}

void ParameterFiles::copy_into(const std::vector<std::pair<std::string, at::Tensor>>& parameters) const {
  c10::NoGradGuard no_grad;
  for (const auto& [name, param] : parameters) {
    auto it = stored_.find(name);
    if (it == stored_.end()) continue;
    weights_->read_range(it->second, 0, param.view(-1));  // straight into it when the dtypes agree
  }
}

}  // namespace angle::model
