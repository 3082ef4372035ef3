// A BERT-family encoder (BERT, MiniLM, BGE, E5: all the same graph) in LibTorch, with parameter
// names identical to HuggingFace's BertModel so that safetensors load and export by name.
// The implementation (torch::nn modules for the names) lives in bert.cpp; this header stays light.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/backbone.h"
#include "model/bert_config.h"

namespace angle::model {

class BertModel final : public Backbone {
 public:
  // Parameters initialised as torch::nn initialises them, or (initialise false) allocated and never
  // touched, for load_encoder to fill or release (model/encoder.h).
  explicit BertModel(const BertConfig& config, bool initialise = true);
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, UnitSource* source = nullptr,
                     const at::Tensor& row_keys = {},
                     std::vector<at::Tensor>* hidden_states = nullptr) const override;
  std::vector<Unit> units() const override;
  // Names as HF, with or without a "bert." prefix, LayerNorm gamma/beta accepted.
  std::shared_ptr<const ParameterFiles> locate_weights(std::shared_ptr<const ModelWeights> weights) const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override;
  void to(at::Device device, at::ScalarType dtype) override;
  void train(bool on) override;
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t hidden_size() const override { return config_.hidden_size; }
  const BertConfig& config() const { return config_; }

 private:
  struct Impl;
  BertConfig config_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace angle::model
