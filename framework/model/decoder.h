// A LLaMA-family decoder (llama, mistral, qwen2, qwen3) in LibTorch: RMSNorm, rotary position
// embeddings (default, linear or llama3 scaling), grouped-query causal attention, a SwiGLU MLP,
// biases where the config has them, Qwen3's q/k norms and Mistral's sliding window. Parameter
// names are those of HF's LlamaModel ("layers.0.self_attn.q_proj.weight"); a checkpoint's
// "model." prefix (…ForCausalLM) is accepted and its lm_head ignored: the encoder needs only the
// last hidden state.
//
// Positions are 0..T-1 in every row whatever the padding, as transformers computes them when it is
// given no position_ids (angle-emb passes none): a left-padded row's tokens start at the position
// of its first pad, so parity with transformers and angle-emb holds for both padding sides.
//
// BiLLM (DecoderConfig::bidirectional_from = K, angle-emb's apply_billm): layers K.. attend to
// every real key, both ways; padding keys stay masked (BiLLM's all-zero mask attends to them too),
// so a text embeds as BiLLM embeds it alone, whatever its batch.
#pragma once
#include <memory>

#include "model/backbone.h"
#include "model/decoder_config.h"
#include "model/lora.h"

namespace angle::model {

class DecoderModel final : public Backbone {
 public:
  // With `lora` enabled, its target projections get adapters (uninitialised: model/lora.h sets
  // them) and every base parameter is frozen (requires_grad false). Base parameters are allocated
  // uninitialised (load_encoder fills them, or releases them for a sharder: model/encoder.h).
  explicit DecoderModel(const DecoderConfig& config, const LoraConfig& lora = {});
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, UnitSource* source = nullptr,
                     const at::Tensor& row_keys = {},
                     std::vector<at::Tensor>* hidden_states = nullptr) const override;
  std::vector<Unit> units() const override;
  std::shared_ptr<const ParameterFiles> locate_weights(std::shared_ptr<const ModelWeights> weights) const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override;
  void to(at::Device device, at::ScalarType dtype) override;
  void train(bool on) override;
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t hidden_size() const override { return config_.hidden_size; }
  const DecoderConfig& config() const { return config_; }
  const LoraConfig& lora() const { return lora_; }

 private:
  struct Impl;
  DecoderConfig config_;
  LoraConfig lora_;
  std::shared_ptr<Impl> impl_;
};

// The rotary inverse frequencies [head_dim / 2] in float32, scaled as the config says.
at::Tensor rope_inverse_frequencies(const DecoderConfig& config);

}  // namespace angle::model
