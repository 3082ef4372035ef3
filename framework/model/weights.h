// The safetensors weights of a model directory: model.safetensors, or the shards that
// model.safetensors.index.json maps each tensor to (every shard must exist; checked on open).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace angle::model {

class SafetensorsFile;

class ModelWeights {
 public:
  static ModelWeights from_dir(const std::string& dir);
  explicit ModelWeights(const std::string& safetensors_path);  // one file
  ~ModelWeights();

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  // A copy of the tensor in its stored dtype.
  at::Tensor load(const std::string& name) const;
  // The file that holds `name` (or the directory's weights, for messages about a missing one).
  std::string path_of(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  ModelWeights() = default;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
  std::string description_;
};

// Copies each parameter from the first of `candidates(name)` that the weights hold (the names a
// checkpoint may use for it); a missing tensor or a shape other than the parameter's is an error
// naming the file and `config_source` (the config.json the shapes come from).
void copy_parameters(const std::vector<std::pair<std::string, at::Tensor>>& parameters, const ModelWeights& weights,
                     const std::function<std::vector<std::string>(const std::string&)>& candidates,
                     const std::string& config_source);

}  // namespace angle::model
