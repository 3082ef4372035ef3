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

class BertModel {
 public:
  explicit BertModel(const BertConfig& config);
  // input_ids, attention_mask: int64 [B, T]; returns the last hidden state [B, T, H].
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;
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
