// What the encoder, the sharder and the checkpoints need from a transformer backbone: BERT
// (model/bert.h) or a LLaMA-family decoder (model/decoder.h). Parameter names are HuggingFace's,
// so that safetensors load and export by name.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace angle::model {

class ModelWeights;
class ParameterFiles;

// The model in units (FSDP's wrapping): the word embeddings, then the other groups (BERT: the rest
// of the embeddings, each encoder layer; decoders: each decoder layer, the final norm). `params`
// are indices into named_parameters(); a unit's parameters are contiguous in that order. The word
// embeddings are only looked up: their backward reads no parameter (so a sharder need not gather
// them again) and, under a UnitSource, their gradient is sparse (the rows of the batch's tokens).
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

// Runs one unit: `body(input, parameters)` with the unit's parameters (the model's `own`, or the
// source's), then hands the output to the source, once the body's parameter handles are dropped.
template <typename Body>
at::Tensor run_unit(UnitSource* source, const std::vector<at::Tensor>& own, size_t unit, const at::Tensor& input,
                    Body&& body) {
  at::Tensor out;
  {
    const std::vector<at::Tensor> parameters = source ? source->acquire(unit) : own;
    out = body(input, parameters);
  }
  return source ? source->release(unit, out) : out;
}

class Backbone {
 public:
  virtual ~Backbone() = default;
  // input_ids, attention_mask: int64 [B, T]; returns the last hidden state [B, T, H]. With a
  // `source`, parameters come from it unit by unit and the word-embedding gradient is sparse.
  // row_keys: int64 [B], each text's dropout key (model/dropout.h); training with dropout needs them.
  // hidden_states, when given, receives HF's output_hidden_states: L + 1 tensors [B, T, H], index i < L
  // the input of layer i (0: the embeddings' output), index L the returned last hidden state.
  virtual at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             UnitSource* source = nullptr, const at::Tensor& row_keys = {},
                             std::vector<at::Tensor>* hidden_states = nullptr) const = 0;
  virtual std::vector<Unit> units() const = 0;
  // Where each parameter that the model's weights hold lies in them (all but LoRA's adapters); a
  // missing tensor or a shape that disagrees with config.json is an error naming both.
  virtual std::shared_ptr<const ParameterFiles> locate_weights(std::shared_ptr<const ModelWeights> weights) const = 0;
  virtual std::vector<std::pair<std::string, at::Tensor>> named_parameters() const = 0;
  // Released parameters (model/storage.h: a sharder reads their values from the files) stay so.
  virtual void to(at::Device device, at::ScalarType dtype) = 0;
  virtual void train(bool on) = 0;
  virtual int64_t max_positions() const = 0;  // the longest sequence the model takes
  virtual int64_t vocab_size() const = 0;
  virtual int64_t hidden_size() const = 0;  // the width of the last hidden state
};

// Backbone::to for a model's parameters: each to `device` and `dtype` (those named by
// `keeps_fp32` in float32), but those released (model/storage.h).
void move_parameters(const std::vector<std::pair<std::string, at::Tensor>>& parameters, at::Device device,
                     at::ScalarType dtype, const std::function<bool(const std::string&)>& keeps_fp32);

}  // namespace angle::model
