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
  // Elements [first, first + out.numel()) of the tensor, flattened, into `out` (SafetensorsFile::read_range).
  void read_range(const std::string& name, int64_t first, const at::Tensor& out) const;
  std::vector<int64_t> shape(const std::string& name) const;
  // The file that holds `name` (or the directory's weights, for messages about a missing one).
  std::string path_of(const std::string& name) const;

 private:
  ModelWeights() = default;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
  const SafetensorsFile& file_of(const std::string& name) const;
  std::string description_;
};

// Where each of a model's parameters lies in its weights: the stored tensor found under the
// first of `candidates(name)` that the weights hold (the names a checkpoint may use for it), its
// shape checked on construction: a missing tensor or a shape other than the parameter's is an error
// naming the file and `config_source` (the config.json the shapes come from). Reads a whole
// parameter into the model, or any range of its elements: a sharder reads only the slices its
// rank owns (shard/fsdp.h), so no rank ever holds the whole model.
class ParameterFiles {
 public:
  ParameterFiles(std::shared_ptr<const ModelWeights> weights,
                 const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                 const std::function<std::vector<std::string>(const std::string&)>& candidates,
                 const std::string& config_source);
  bool holds(const std::string& parameter) const { return stored_.count(parameter) != 0; }
  // Elements [first, first + out.numel()) of the parameter, flattened, into `out` (1-D, any dtype
  // and device).
  void read(const std::string& parameter, int64_t first, const at::Tensor& out) const;
  // Every parameter of `parameters` that it holds, whole.
  void copy_into(const std::vector<std::pair<std::string, at::Tensor>>& parameters) const;

 private:
  std::shared_ptr<const ModelWeights> weights_;
  std::map<std::string, std::string> stored_;  // parameter name -> its tensor's name in the weights
};

}  // namespace angle::model
