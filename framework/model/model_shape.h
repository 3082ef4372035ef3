// A model's shape from its config.json alone (no weights loaded): the sharding units of
// model::BertModel (word embeddings, the rest of the embeddings, each layer) or of a LLaMA-family
// model::DecoderModel (embeddings, each layer, the final norm; optionally with LoRA adapters,
// the base weights then frozen), their parameter counts, and the sizes the FLOP formula needs.
// Below train/ and plan/: the trainer counts its achieved model FLOPs with it, `angle plan`
// predicts memory, traffic and time from it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/bert_config.h"
#include "model/lora.h"

namespace angle::model {

struct UnitShape {
  std::string name;
  std::vector<int64_t> param_numels;  // trainable, in named_parameters() order
  bool sparse = false;                // word embeddings: looked up, sparse gradient
  bool backward_reads_params = true;
  int64_t frozen = 0;                 // frozen parameters (LoRA's base weights): no gradient, no optimizer state
  int64_t numel() const;              // trainable
};

struct ModelShape {
  int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0;
  int64_t kv_heads = 0, head_dim = 0;  // decoders (grouped-query attention); 0 for BERT
  bool decoder = false;                // LLaMA family: activations by decoder_activation_bytes
  int64_t lora_rank = 0;               // > 0: the base is frozen, the adapters train
  std::vector<std::string> adapted;    // the projections of each layer that carry an adapter
  std::vector<UnitShape> units;
  int64_t numel() const;   // trainable
  int64_t frozen() const;
  int64_t matmul_weights() const;  // weights of the layers' matrix products (FLOPs)
  // Model FLOPs of training on `tokens` tokens whose sequences' squared lengths sum to
  // `squared_lengths`: forward 2 x matmul_weights per token, backward 4 x (gradients of inputs and
  // of weights; 2 x with LoRA, whose frozen weights need none), plus attention's two batched
  // products (2 x hidden x length^2 per layer and sequence in forward: 12 x layers x hidden x
  // length^2 over forward and backward). Embedding look-ups, norms, biases and adapters are left out.
  double train_flops(double tokens, double squared_lengths) const;
  // The tokens of `rows` (token-id sequences) and the FLOPs of training on them (train_flops).
  struct RowsCost {
    double tokens = 0, flops = 0;
  };
  RowsCost train_cost(const std::vector<const std::vector<int64_t>*>& rows) const;
};

// The pack-or-pad rule of model/bert.cpp: a batch whose real tokens fill at least 90% of its
// padded positions runs per-token operations on every position (the copies that packing needs
// cost more than the padding they save); sparser batches are packed. The planner uses it too.
inline bool runs_padded(int64_t tokens, int64_t padded_positions) { return tokens * 10 >= padded_positions * 9; }

ModelShape bert_shape(const model::BertConfig& config);

// A LLaMA-family config.json (model_type llama, mistral, qwen2, qwen3): the parameters of
// model::DecoderModel in its named_parameters() order (embeddings, each layer's q/k/v/o, q/k
// norms, gate/up/down and two RMSNorms, the final norm); with LoRA (lora.r > 0) an adapter
// (lora_A, lora_B) on each targeted projection, everything else frozen.
ModelShape decoder_shape(const std::string& config_path, const model::LoraConfig& lora);

// BERT or LLaMA family by the config's model_type (LoRA only for the latter).
ModelShape shape_from_config(const std::string& config_path, const model::LoraConfig& lora);

}  // namespace angle::model
