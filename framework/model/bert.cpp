#include "model/bert.h"

#include <torch/nn.h>

#include "core/error.h"
#include "model/attention.h"
#include "model/dropout.h"
#include "model/model_shape.h"
#include "model/weights.h"

namespace angle::model {
namespace nn = torch::nn;

namespace {

// A bare module used only to reproduce HF's nesting ("attention.self.query", ...).
std::shared_ptr<nn::Module> child(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

at::Tensor activation(const at::Tensor& x, const std::string& name) {
  if (name == "gelu") return at::gelu(x);
  if (name == "relu") return at::relu(x);
  return at::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

// A parameter of `parent`, initialised as torch::nn initialises it (Linear weights and biases
// U(-1/sqrt(in), 1/sqrt(in)), embeddings N(0, 1), LayerNorm 1 and 0: a model built from a config
// alone is usable), or left uninitialised, never touched: then its pages are never resident
// before the weights files fill it or a sharder releases it (model/encoder.h).
enum class Init { kLinear, kNormal, kOnes, kZeros };
void parameter(nn::Module& parent, const std::string& name, at::IntArrayRef shape, bool initialise, Init init,
               int64_t fan_in = 0) {
  at::Tensor p = at::empty(shape);
  if (initialise) {
    torch::NoGradGuard no_grad;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    if (init == Init::kLinear) p.uniform_(-bound, bound);
    if (init == Init::kNormal) p.normal_(0, 1);
    if (init == Init::kOnes) p.fill_(1);
    if (init == Init::kZeros) p.zero_();
  }
  parent.register_parameter(name, p);
}

void linear(nn::Module& parent, const std::string& name, int64_t in, int64_t out, bool initialise) {
  auto m = child(parent, name);
  parameter(*m, "weight", {out, in}, initialise, Init::kLinear, in);
  parameter(*m, "bias", {out}, initialise, Init::kLinear, in);
}

void layer_norm(nn::Module& parent, const std::string& name, int64_t size, bool initialise) {
  auto m = child(parent, name);
  parameter(*m, "weight", {size}, initialise, Init::kOnes);
  parameter(*m, "bias", {size}, initialise, Init::kZeros);
}

void embedding(nn::Module& parent, const std::string& name, int64_t rows, int64_t width, bool initialise) {
  parameter(*child(parent, name), "weight", {rows, width}, initialise, Init::kNormal);
}

// One encoder layer, named as HF names it ("attention.self.query", ...).
void encoder_layer(nn::Module& parent, const std::string& name, const BertConfig& c, bool initialise) {
  auto layer = child(parent, name);
  auto attention = child(*layer, "attention");
  auto self = child(*attention, "self");
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  for (const char* projection : {"query", "key", "value"}) linear(*self, projection, h, h, initialise);
  auto attention_output = child(*attention, "output");
  linear(*attention_output, "dense", h, h, initialise);
  layer_norm(*attention_output, "LayerNorm", h, initialise);
  linear(*child(*layer, "intermediate"), "dense", h, f, initialise);
  auto output = child(*layer, "output");
  linear(*output, "dense", f, h, initialise);
  layer_norm(*output, "LayerNorm", h, initialise);
}

}  // namespace

struct BertModel::Impl : nn::Module {
  BertConfig c;

  Impl(const BertConfig& config, bool initialise) : c(config) {
    auto embeddings = child(*this, "embeddings");
    embedding(*embeddings, "word_embeddings", c.vocab_size, c.hidden_size, initialise);
    embedding(*embeddings, "position_embeddings", c.max_position_embeddings, c.hidden_size, initialise);
    embedding(*embeddings, "token_type_embeddings", c.type_vocab_size, c.hidden_size, initialise);
    layer_norm(*embeddings, "LayerNorm", c.hidden_size, initialise);
    auto layer_list = child(*child(*this, "encoder"), "layer");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) encoder_layer(*layer_list, std::to_string(i), c, initialise);
  }

  std::vector<Unit> units;                       // see bert.h
  std::vector<std::vector<at::Tensor>> own;      // each unit's parameters (the module's tensors)

  void make_units() {
    std::vector<std::string> names;
    std::vector<at::Tensor> tensors;
    for (const auto& item : named_parameters(true)) names.push_back(item.key()), tensors.push_back(item.value());
    auto add = [&](const std::string& name, size_t first, size_t count, const std::vector<std::string>& suffixes) {
      Unit unit{name, {}, name != "embeddings.word_embeddings", name == "embeddings.word_embeddings"};
      std::vector<at::Tensor> params;
      for (size_t i = 0; i < count; ++i) {
        ANGLE_CHECK(first + i < names.size() && names[first + i] == name + "." + suffixes[i],
                    "BERT parameter order: expected ", name, ".", suffixes[i]);
        unit.params.push_back(first + i);
        params.push_back(tensors[first + i]);
      }
      units.push_back(unit);
      own.push_back(params);
    };
    add("embeddings.word_embeddings", 0, 1, {"weight"});
    add("embeddings", 1, 4, {"position_embeddings.weight", "token_type_embeddings.weight", "LayerNorm.weight",
                             "LayerNorm.bias"});
    const std::vector<std::string> layer = {
        "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
        "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"};
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      add("encoder.layer." + std::to_string(i), 5 + 16 * static_cast<size_t>(i), 16, layer);
    ANGLE_CHECK(5 + 16 * static_cast<size_t>(c.num_hidden_layers) == names.size(), "BERT: unexpected parameters");
  }

  // Padding-free execution: every per-token operation (embeddings, the Q/K/V, output and
  // feed-forward projections, LayerNorm, dropout) runs on the packed real tokens only [N, H];
  // only attention, which mixes tokens, sees the padded [B, T] layout. Same arithmetic as the
  // padded model, without the FLOPs spent on padding (often half of a random training batch).
  // Dropout sites (model/dropout.h): the embeddings 0; layer l: attention probabilities 1 + 3l, the
  // attention output 2 + 3l, the feed-forward output 3 + 3l.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, UnitSource* source, const at::Tensor& row_keys,
                     std::vector<at::Tensor>* hidden_states) {
    const int64_t batch = ids.size(0), length = ids.size(1), heads = c.num_attention_heads;
    const int64_t hidden = c.hidden_size, head_dim = hidden / heads;
    const double eps = c.layer_norm_eps;
    ANGLE_CHECK(length <= c.max_position_embeddings, "sequence length ", length, " exceeds max_position_embeddings ",
                c.max_position_embeddings, " of ", c.source);
    // Runs unit u with its parameters, then hands its output to the source (which may free them).
    auto run = [&](size_t u, const at::Tensor& input, auto&& body) { return run_unit(source, own[u], u, input, body); };
    at::Tensor tokens = mask.reshape({-1}).nonzero().squeeze(1);  // flat indices of real tokens
    // Length-sorted inference batches are nearly dense: there the copies cost more than they save.
    const bool dense = runs_padded(tokens.numel(), batch * length);
    if (dense) tokens = at::arange(batch * length, tokens.options());
    auto pack = [&](const at::Tensor& padded) {
      at::Tensor flat = padded.reshape({batch * length, -1});
      return dense ? flat : flat.index_select(0, tokens);
    };
    auto unpack = [&](const at::Tensor& packed) {
      if (dense) return packed.view({batch, length, packed.size(1)});
      return at::zeros({batch * length, packed.size(1)}, packed.options())
          .index_copy(0, tokens, packed)
          .view({batch, length, packed.size(1)});
    };
    at::Tensor positions = at::arange(length, ids.options()).repeat({batch}).index_select(0, tokens);
    at::Tensor token_ids = ids.reshape({-1}).index_select(0, tokens);
    at::Tensor x = source ? source->release(0, source->lookup(0, token_ids)) : at::embedding(own[0][0], token_ids);
    const bool training = is_training();
    const KeyedDropout keyed(training ? row_keys : at::Tensor(), mask);
    auto dropout = [&](const at::Tensor& t, uint32_t site) {
      return training ? keyed.tokens(t, c.hidden_dropout_prob, site, tokens) : t;
    };
    const double attention_p = training ? c.attention_probs_dropout_prob : 0.0;
    // token_type_ids are all zero for single-sentence encoding, as in sentence-transformers.
    x = run(1, x, [&](const at::Tensor& in, auto& w) {
      at::Tensor e = in + at::embedding(w[0], positions) + w[1][0];
      return dropout(at::layer_norm(e, {hidden}, w[2], w[3], eps), 0);
    });
    // Keys at padded positions are excluded; padded queries produce rows that are dropped.
    const at::Tensor key_mask = mask.to(at::kBool).view({batch, 1, 1, length});
    for (size_t l = 0; l < static_cast<size_t>(c.num_hidden_layers); ++l) {
      if (hidden_states) hidden_states->push_back(unpack(x));
      const auto site = static_cast<uint32_t>(1 + 3 * l);
      x = run(2 + l, x, [&](const at::Tensor& in, auto& w) {
        auto heads_of = [&](size_t k) {
          return unpack(at::linear(in, w[k], w[k + 1])).view({batch, length, heads, head_dim}).transpose(1, 2);
        };
        at::Tensor context = attention(heads_of(0), heads_of(2), heads_of(4), key_mask, attention_p, keyed, site, false);
        context = pack(context.transpose(1, 2).reshape({batch, length, hidden}));
        at::Tensor h = at::layer_norm(dropout(at::linear(context, w[6], w[7]), site + 1) + in, {hidden},
                                      w[8], w[9], eps);
        at::Tensor ff = at::linear(activation(at::linear(h, w[10], w[11]), c.hidden_act), w[12], w[13]);
        return at::layer_norm(dropout(ff, site + 2) + h, {hidden}, w[14], w[15], eps);
      });
    }
    at::Tensor last = unpack(x);  // padded positions are 0 (or, when dense, computed but meaningless)
    if (hidden_states) hidden_states->push_back(last);
    return last;
  }
};

BertModel::BertModel(const BertConfig& config, bool initialise)
    : config_(config), impl_(std::make_shared<Impl>(config, initialise)) {
  impl_->make_units();
  impl_->eval();
}

at::Tensor BertModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, UnitSource* source,
                             const at::Tensor& row_keys, std::vector<at::Tensor>* hidden_states) const {
  return impl_->forward(input_ids, attention_mask, source, row_keys, hidden_states);
}

std::vector<Unit> BertModel::units() const { return impl_->units; }

std::vector<std::pair<std::string, at::Tensor>> BertModel::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : impl_->named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::shared_ptr<const ParameterFiles> BertModel::locate_weights(std::shared_ptr<const ModelWeights> weights) const {
  // Accept "bert." prefixes (BertForMaskedLM checkpoints) and the old gamma/beta LayerNorm names.
  return std::make_shared<ParameterFiles>(std::move(weights), named_parameters(), [](const std::string& name) {
    std::vector<std::string> candidates = {name, "bert." + name};
    if (name.ends_with(".LayerNorm.weight")) candidates.push_back(name.substr(0, name.size() - 6) + "gamma");
    if (name.ends_with(".LayerNorm.bias")) candidates.push_back(name.substr(0, name.size() - 4) + "beta");
    return candidates;
  }, config_.source);
}

void BertModel::to(at::Device device, at::ScalarType dtype) {
  move_parameters(named_parameters(), device, dtype, [](const std::string&) { return false; });
}
void BertModel::train(bool on) { impl_->train(on); }

}  // namespace angle::model
