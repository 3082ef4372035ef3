#include "model/decoder.h"

#include <torch/nn.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "model/attention.h"
#include "model/dropout.h"
#include "model/weights.h"

namespace angle::model {
namespace nn = torch::nn;

namespace {

std::shared_ptr<nn::Module> child(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

// A projection, and its adapter when LoRA targets it: named as peft names them
// ("q_proj.lora_A.weight"), registered after the base weights so that they follow them in
// named_parameters() order. With LoRA the base weights are frozen. Base weights are left
// uninitialised: the weights files hold them.
void linear(nn::Module& parent, const std::string& name, int64_t in, int64_t out, bool bias, const LoraConfig& lora) {
  auto m = child(parent, name);
  m->register_parameter("weight", at::empty({out, in}), /*requires_grad=*/!lora.enabled());
  if (bias) m->register_parameter("bias", at::empty({out}), !lora.enabled());
  if (!lora.targets(name)) return;
  child(*m, "lora_A")->register_parameter("weight", at::zeros({lora.r, in}));
  child(*m, "lora_B")->register_parameter("weight", at::zeros({out, lora.r}));
}

void rms_weight(nn::Module& parent, const std::string& name, int64_t size, const LoraConfig& lora) {
  child(parent, name)->register_parameter("weight", at::ones({size}), !lora.enabled());
}

// HF's LlamaRMSNorm: normalised in float32, cast back, then scaled.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor f = x.to(at::kFloat);
  f = f * at::rsqrt(f.pow(2).mean(-1, true) + eps);
  return weight * f.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

at::Tensor rope_inverse_frequencies(const DecoderConfig& c) {
  at::Tensor exponents = at::arange(0, c.head_dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(c.head_dim);
  at::Tensor inv = 1.0 / at::pow(c.rope_theta, exponents);
  if (c.rope_type == "linear") return inv / c.rope_factor;
  if (c.rope_type != "llama3") return inv;
  // Llama 3.1: long wavelengths divided by the factor, short ones kept, the band between blended.
  const double old_context = static_cast<double>(c.rope_original_max_positions);
  const double low_wavelen = old_context / c.rope_low_freq_factor, high_wavelen = old_context / c.rope_high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv;
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
  at::Tensor smooth = (old_context / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
  at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return at::where(medium, smoothed, scaled);
}

struct DecoderModel::Impl : nn::Module {
  DecoderConfig c;
  LoraConfig lora;
  std::vector<Unit> units;
  std::vector<std::vector<at::Tensor>> own;  // each unit's parameters
  std::vector<std::string> layer_names;      // parameter names inside a layer, in order

  Impl(const DecoderConfig& config, const LoraConfig& adapters) : c(config), lora(adapters) {
    const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
    child(*this, "embed_tokens")->register_parameter("weight", at::empty({c.vocab_size, h}), !lora.enabled());
    auto layers = child(*this, "layers");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      auto layer = child(*layers, std::to_string(i));
      auto attention = child(*layer, "self_attn");
      linear(*attention, "q_proj", h, q, c.attention_bias, lora);
      linear(*attention, "k_proj", h, kv, c.attention_bias, lora);
      linear(*attention, "v_proj", h, kv, c.attention_bias, lora);
      linear(*attention, "o_proj", q, h, c.output_bias, lora);
      if (c.qk_norm) {
        rms_weight(*attention, "q_norm", c.head_dim, lora);
        rms_weight(*attention, "k_norm", c.head_dim, lora);
      }
      auto mlp = child(*layer, "mlp");
      linear(*mlp, "gate_proj", h, c.intermediate_size, c.mlp_bias, lora);
      linear(*mlp, "up_proj", h, c.intermediate_size, c.mlp_bias, lora);
      linear(*mlp, "down_proj", c.intermediate_size, h, c.mlp_bias, lora);
      rms_weight(*layer, "input_layernorm", h, lora);
      rms_weight(*layer, "post_attention_layernorm", h, lora);
    }
    rms_weight(*this, "norm", h, lora);
    make_units();
  }

  void make_units() {
    const auto params = named_parameters(true);
    auto unit_of = [&](const std::string& name) -> std::pair<std::string, size_t> {
      if (name.rfind("embed_tokens.", 0) == 0) return {"embed_tokens", 0};
      if (name.rfind("norm.", 0) == 0) return {"norm", static_cast<size_t>(c.num_hidden_layers) + 1};
      const size_t dot = name.find('.', 7);  // "layers.<i>."
      return {name.substr(0, dot), std::stoul(name.substr(7, dot - 7)) + 1};
    };
    units.resize(static_cast<size_t>(c.num_hidden_layers) + 2);
    own.resize(units.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const auto [unit_name, u] = unit_of(params[i].key());
      ANGLE_CHECK(units[u].params.empty() || units[u].params.back() + 1 == i, "decoder parameter order: ", params[i].key());
      units[u].name = unit_name;
      units[u].params.push_back(i);
      own[u].push_back(params[i].value());
      if (u == 1) layer_names.push_back(params[i].key().substr(unit_name.size() + 1));
    }
    units[0].backward_reads_params = false;
    units[0].sparse_grad = true;
  }

  // [B, 1, T, T]: real keys only; causal (and within the sliding window) unless `both_ways`. A
  // padded query row would see no key at all (NaN from softmax, spreading through the values of
  // the next layer), so every row also sees itself; such rows are padding, and dropped by the
  // pooling. Both ways, BiLLM's mask is all zeros: its rows see the padding too, so a text's
  // embedding changes with the padding its batch adds. Here padding stays masked, so that a text
  // embeds as BiLLM embeds it alone, in any batch and at any world size.
  at::Tensor attention_mask(const at::Tensor& mask, int64_t length, bool both_ways) const {
    at::Tensor i = at::arange(length, mask.options()).view({length, 1}), j = at::arange(length, mask.options()).view({1, length});
    at::Tensor allowed = both_ways ? at::ones({length, length}, mask.options().dtype(at::kBool)) : j <= i;
    if (c.sliding_window && !both_ways) allowed = allowed.logical_and(i - j < *c.sliding_window);
    allowed = allowed.view({1, 1, length, length}).logical_and(mask.to(at::kBool).view({mask.size(0), 1, 1, length}));
    return allowed.logical_or(i == j);
  }

  // Each layer's mask: causal below bidirectional_from, both ways from it on.
  std::vector<at::Tensor> layer_masks(const at::Tensor& mask, int64_t length) const {
    const int64_t from = std::min(c.bidirectional_from.value_or(c.num_hidden_layers), c.num_hidden_layers);
    const at::Tensor causal = attention_mask(mask, length, false);
    const at::Tensor both_ways = from < c.num_hidden_layers ? attention_mask(mask, length, true) : at::Tensor();
    std::vector<at::Tensor> masks(static_cast<size_t>(c.num_hidden_layers), causal);
    std::fill(masks.begin() + from, masks.end(), both_ways);
    return masks;
  }

  // Dropout sites (model/dropout.h) of layer l: the attention probabilities 8l, the adapters' inputs
  // 8l + 1 ... 8l + 7 (q, k, v, o, gate, up, down: peft draws a mask per adapter).
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, UnitSource* source, const at::Tensor& row_keys,
                     std::vector<at::Tensor>* hidden_states) {
    const int64_t batch = ids.size(0), length = ids.size(1);
    const int64_t heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, head_dim = c.head_dim;
    ANGLE_CHECK(length <= c.max_position_embeddings, "sequence length ", length, " exceeds max_position_embeddings ",
                c.max_position_embeddings, " of ", c.source);
    auto run = [&](size_t u, const at::Tensor& input, auto&& body) { return run_unit(source, own[u], u, input, body); };
    at::Tensor flat_ids = ids.reshape({-1});
    at::Tensor x = source ? source->release(0, source->lookup(0, flat_ids)) : at::embedding(own[0][0], flat_ids);
    x = x.view({batch, length, c.hidden_size});
    // Rotary tables in float32, then in the activations' dtype (as HF's LlamaRotaryEmbedding).
    at::Tensor inv = rope_inverse_frequencies(c).to(ids.device());
    at::Tensor freqs = at::outer(at::arange(length, ids.options()).to(at::kFloat), inv);
    at::Tensor angles = at::cat({freqs, freqs}, -1);
    const at::Tensor cos = angles.cos().to(x.scalar_type()), sin = angles.sin().to(x.scalar_type());
    auto rotate = [&](const at::Tensor& t) { return t * cos + rotate_half(t) * sin; };
    const std::vector<at::Tensor> masks = layer_masks(mask, length);
    const bool training = is_training();
    const double attention_p = training ? c.attention_dropout : 0.0, adapter_p = training ? lora.dropout : 0.0;
    const KeyedDropout keyed(training ? row_keys : at::Tensor(), mask);
    const bool qk_norm = c.qk_norm, bias = c.attention_bias, out_bias = c.output_bias, mlp_bias = c.mlp_bias;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      if (hidden_states) hidden_states->push_back(x);
      x = run(static_cast<size_t>(l) + 1, x, [&](const at::Tensor& in, const std::vector<at::Tensor>& w) {
        size_t k = 0;
        auto next = [&](bool present) { return present ? w[k++] : at::Tensor(); };
        // A projection's weight, bias and adapter, in named_parameters() order; applied by project().
        struct Projection {
          at::Tensor weight, bias, lora_a, lora_b;
          uint32_t site = 0;
        };
        const auto site = static_cast<uint32_t>(8 * l);
        auto projection = [&](const char* name, bool has_bias, uint32_t adapter_site) {
          Projection p;
          p.site = adapter_site;
          p.weight = next(true), p.bias = next(has_bias);
          p.lora_a = next(lora.targets(name)), p.lora_b = next(lora.targets(name));
          return p;
        };
        // As peft: the adapter in its own dtype (fp32 beside a bf16 base), the sum computed in
        // fp32 and stored in the base's dtype. Added in place (autograd keeps neither operand): a
        // fresh output-sized sum per projection would be freed at once, yet stay resident in the
        // heap between the tensors autograd keeps (plan/activation_plan.cpp counts the one left).
        auto project = [&](const at::Tensor& x, const Projection& p) {
          at::Tensor y = at::linear(x, p.weight, p.bias);
          if (!p.lora_a.defined()) return y;
          const at::Tensor in = keyed.padded(x, adapter_p, p.site, p.lora_a.scalar_type());
          return y.add_(lora_delta(in, p.lora_a, p.lora_b, lora.scaling()));
        };
        const Projection wq = projection("q_proj", bias, site + 1), wk = projection("k_proj", bias, site + 2),
                         wv = projection("v_proj", bias, site + 3), wo = projection("o_proj", out_bias, site + 4);
        const at::Tensor q_norm = next(qk_norm), k_norm = next(qk_norm);
        const Projection wg = projection("gate_proj", mlp_bias, site + 5), wu = projection("up_proj", mlp_bias, site + 6),
                         wd = projection("down_proj", mlp_bias, site + 7);
        const at::Tensor norm_in = next(true), norm_post = next(true);
        at::Tensor h = rms_norm(in, norm_in, c.rms_norm_eps);
        auto split_heads = [&](const at::Tensor& t, int64_t n) { return t.view({batch, length, n, head_dim}).transpose(1, 2); };
        at::Tensor q = split_heads(project(h, wq), heads), key = split_heads(project(h, wk), kv_heads),
                   v = split_heads(project(h, wv), kv_heads);
        if (qk_norm) {
          q = rms_norm(q, q_norm, c.rms_norm_eps);
          key = rms_norm(key, k_norm, c.rms_norm_eps);
        }
        q = rotate(q);
        key = rotate(key);
        if (kv_heads != heads) {  // grouped-query attention: query head i reads key/value head i / (heads / kv_heads)
          key = key.repeat_interleave(heads / kv_heads, 1);
          v = v.repeat_interleave(heads / kv_heads, 1);
        }
        at::Tensor context = attention(q, key, v, masks[static_cast<size_t>(l)], attention_p, keyed, site, training);
        at::Tensor attended = in + project(context.transpose(1, 2).reshape({batch, length, heads * head_dim}), wo);
        at::Tensor g = rms_norm(attended, norm_post, c.rms_norm_eps);
        return attended + project(at::silu(project(g, wg)) * project(g, wu), wd);
      });
    }
    auto final_norm = [&](const at::Tensor& in, const std::vector<at::Tensor>& w) { return rms_norm(in, w[0], c.rms_norm_eps); };
    at::Tensor out = run(static_cast<size_t>(c.num_hidden_layers) + 1, x, final_norm);
    if (hidden_states) hidden_states->push_back(out);  // HF's last hidden state is after the final norm
    return out;
  }
};

DecoderModel::DecoderModel(const DecoderConfig& config, const LoraConfig& lora)
    : config_(config), lora_(lora), impl_(std::make_shared<Impl>(config, lora)) {
  impl_->eval();
}

at::Tensor DecoderModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, UnitSource* source,
                                const at::Tensor& row_keys, std::vector<at::Tensor>* hidden_states) const {
  return impl_->forward(input_ids, attention_mask, source, row_keys, hidden_states);
}

std::vector<Unit> DecoderModel::units() const { return impl_->units; }

std::vector<std::pair<std::string, at::Tensor>> DecoderModel::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : impl_->named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::shared_ptr<const ParameterFiles> DecoderModel::locate_weights(std::shared_ptr<const ModelWeights> weights) const {
  // …ForCausalLM checkpoints hold the base model under "model.".
  std::vector<std::pair<std::string, at::Tensor>> base;  // the adapters come from model/lora.h
  for (const auto& item : named_parameters())
    if (!is_adapter_param(item.first)) base.push_back(item);
  return std::make_shared<ParameterFiles>(
      std::move(weights), base, [](const std::string& name) { return std::vector<std::string>{name, "model." + name}; },
      config_.source);
}

// Adapters stay in fp32 beside a bf16 base, as peft keeps them (autocast_adapter_dtype).
void DecoderModel::to(at::Device device, at::ScalarType dtype) {
  move_parameters(named_parameters(), device, dtype, is_adapter_param);
}
void DecoderModel::train(bool on) { impl_->train(on); }

}  // namespace angle::model
