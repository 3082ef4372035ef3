#include "train/encode.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>


namespace angle::train {
namespace {

// bf16 autocast of the forward pass on the model's device, off again at scope exit.
struct Autocast {
  at::DeviceType device;
  bool on;
  Autocast(at::DeviceType d, bool enable) : device(d), on(enable) {
    if (!on) return;
    at::autocast::set_autocast_dtype(device, at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
  }
  ~Autocast() {
    if (!on) return;
    at::autocast::set_autocast_enabled(device, false);
    at::autocast::clear_cache();
  }
};

}  // namespace

// Host to GPU from pinned memory, without blocking the host: the copy is ordered on the compute
// stream, and the caching host allocator keeps the pinned block until it has run.
static at::Tensor to_device(const at::Tensor& t, const at::Device& device) {
  return device.is_cuda() ? t.pin_memory().to(device, /*non_blocking=*/true) : t;
}

at::Tensor encode_rows(const model::Encoder& encoder, shard::ShardedModel& sharded,
                       const std::vector<const std::vector<int64_t>*>& rows, const std::vector<int64_t>& row_keys,
                       bool bf16_autocast, bool all_layers) {
  std::vector<int64_t> dummy;
  std::vector<const std::vector<int64_t>*> used = rows;
  std::vector<int64_t> keys = row_keys;
  if (rows.empty()) {  // [CLS] [SEP] (or the tokenizer's specials)
    dummy = encoder.tokenizer.encode("", encoder.max_length);
    used = {&dummy}, keys = {0};
  }
  model::TokenBatch tokens = encoder.collate(used);
  at::Tensor ids = to_device(tokens.input_ids, encoder.device), mask = to_device(tokens.attention_mask, encoder.device);
  at::Tensor pooled;
  {
    Autocast autocast(encoder.device.type(), bf16_autocast);
    std::vector<at::Tensor> layers;
    at::Tensor hidden = encoder.model->forward(ids, mask, &sharded, at::tensor(keys, at::kLong),
                                               all_layers ? &layers : nullptr);
    if (!all_layers) layers = {hidden};
    for (at::Tensor& layer : layers) layer = model::pool(layer, mask, encoder.pooling, encoder.tokenizer.padding_side());
    pooled = at::cat(layers, 1);
  }
  pooled = pooled.to(at::kFloat);
  return rows.empty() ? pooled.narrow(0, 0, 0) : pooled;
}

void forward_backward(const model::Encoder& encoder, shard::ShardedModel& sharded, const StepBatch& batch,
                      const EncodeOptions& options, const LossOf& loss_of) {
  using Scope = StepProfile::Scope;
  StepProfile* profile = options.profile;
  auto encode = [&](const std::vector<const std::vector<int64_t>*>& rows, const std::vector<int64_t>& keys) {
    Scope scope(profile, Phase::kForward);
    return encode_rows(encoder, sharded, rows, keys, options.bf16_autocast, options.all_layers);
  };
  auto loss = [&](const at::Tensor& embeddings) {
    Scope scope(profile, Phase::kLoss);
    return loss_of(embeddings);
  };
  auto backward = [&](const at::Tensor& tensor, const at::Tensor& gradient) {
    Scope scope(profile, Phase::kBackward);
    tensor.backward(gradient);
  };
  auto finish = [&] {  // waits for the reductions still in flight (stages 2/3)
    Scope scope(profile, Phase::kReduce);
    sharded.finish_backward();
  };
  if (options.chunk <= 0) {
    backward(loss(encode(batch.rows, batch.row_keys)), {});
    finish();
    return;
  }
  const int64_t chunk_rows = options.chunk * batch.rows_per_example;
  const int64_t chunks = chunk_passes(batch.kept_per_rank, options.chunk);
  auto encode_chunk = [&](int64_t c) {
    return encode(chunk_of(batch.rows, chunk_rows, c), chunk_of(batch.row_keys, chunk_rows, c));
  };
  // Pass 1: embeddings without a graph.
  std::vector<at::Tensor> parts;
  {
    c10::NoGradGuard no_grad;
    for (int64_t c = 0; c < chunks; ++c) parts.push_back(encode_chunk(c));
  }
  // The loss and its gradient w.r.t. this rank's embeddings (the model is not in this graph).
  at::Tensor embeddings = at::cat(parts).requires_grad_(true);
  backward(loss(embeddings), {});
  at::Tensor cached = embeddings.grad().defined() ? embeddings.grad() : at::zeros_like(embeddings);
  // Pass 2: the same chunks again with a graph and the same masks; back-propagate the cached slice.
  for (int64_t c = 0, begin = 0; c < chunks; ++c) {
    at::Tensor part = encode_chunk(c);
    // (A rank out of rows back-propagates an empty gradient through its dummy row: its model
    // backward still runs and takes part in the collectives.)
    backward(part, cached.narrow(0, begin, part.size(0)));
    begin += part.size(0);
    finish();
  }
}

}  // namespace angle::train
