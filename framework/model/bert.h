// A BERT-family encoder (BERT, MiniLM, BGE, E5: all the same graph) in LibTorch, with parameter
// names identical to HuggingFace's BertModel so that safetensors load and export by name.
// The implementation (torch::nn) lives in bert.cpp; this header stays light.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/bert_config.h"

namespace angle::model {

class SafetensorsFile;

// The model in units (FSDP's wrapping): the word embeddings, the rest of the embeddings, and
// each encoder layer. `params` are indices into named_parameters(); a unit's parameters are
// contiguous in that order. The word embeddings are only looked up: their backward reads no
// parameter (so a sharder need not gather them again) and, under a UnitSource, their gradient
// is sparse (the rows of the batch's tokens).
struct Unit {
  std::string name;
  std::vector<size_t> params;
  bool backward_reads_params = true;
  bool sparse_grad = false;
};

// Where each unit's parameters come from during forward: by default the model's own; a sharder
// (shard/fsdp.h) gathers them just in time instead. `acquire(u)` returns the unit's parameters
// in named_parameters() order; `release(u, output)` is called with the unit's output once the
// unit's own parameter handles are dropped, and returns the output to continue with.
class UnitSource {
 public:
  virtual ~UnitSource() = default;
  virtual std::vector<at::Tensor> acquire(size_t unit) = 0;
  virtual at::Tensor release(size_t unit, const at::Tensor& output) = 0;
  // The rows `ids` of a unit that is one embedding matrix (sparse_grad), with its gradient; by
  // default looked up in the acquired matrix (a sharder may gather only those rows).
  virtual at::Tensor lookup(size_t unit, const at::Tensor& ids);
};

class BertModel {
 public:
  explicit BertModel(const BertConfig& config);
  // input_ids, attention_mask: int64 [B, T]; returns the last hidden state [B, T, H].
  // With a `source`, parameters come from it unit by unit and the word-embedding gradient is
  // sparse (only the rows of the batch's tokens).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, UnitSource* source = nullptr) const;
  std::vector<Unit> units() const;
  // Copies every parameter from the file (names as HF, with or without a "bert." prefix);
  // a missing tensor or a shape that disagrees with config.json is an error naming both.
  void load_weights(const SafetensorsFile& file);
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  void to(at::Device device, at::ScalarType dtype);
  void train(bool on);
  const BertConfig& config() const { return config_; }

 private:
  struct Impl;
  BertConfig config_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace angle::model
