// The encode → loss → backward phases of one micro-batch, directly or with gradient caching
// (GradCache, Gao et al. 2021; train.chunk):
//   pass 1: encode the rank's rows chunk by chunk without a graph → embeddings → the (global) loss
//           and its gradient w.r.t. them;
//   pass 2: per chunk, encode again with a graph (the same dropout masks: they are keyed by text,
//           model/dropout.h) and back-propagate that chunk's slice of the cached gradient.
// The parameter gradient is the one of the whole batch, while activations exist for one chunk at
// a time. Every rank runs the same number of chunk passes (the largest rank's count), so that the
// sharder's collectives match; a rank out of rows encodes one dummy row with a zero gradient.
// Each chunk's backward is a full backward: stages 2 and 3 reduce the gradient once per chunk
// (gradient traffic x chunks), stage 1 accumulates locally and reduces once per step.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "model/encoder.h"
#include "shard/fsdp.h"
#include "train/step_batch.h"
#include "train/step_profile.h"

namespace angle::train {

struct EncodeOptions {
  bool bf16_autocast = false;
  int64_t chunk = 0;  // examples per chunk; 0: one pass with a graph
  StepProfile* profile = nullptr;  // times the forward, loss, backward and reduce phases when set
  bool all_layers = false;  // each row: the pooled hidden states 0..L side by side (ESE, loss/espresso.h)
};

// The differentiable loss of the micro-batch from this rank's embeddings [rows, D] (float32),
// already scaled for back-propagation; it may throw before any backward starts.
using LossOf = std::function<at::Tensor(const at::Tensor& embeddings)>;

// Runs forward, loss and backward (finish_backward() included) of `batch` on every rank.
void forward_backward(const model::Encoder& encoder, shard::ShardedModel& sharded, const StepBatch& batch,
                      const EncodeOptions& options, const LossOf& loss_of);

// Pooled embeddings [rows, D] (float32) of token rows with their dropout keys, through the
// sharder; no rows: one dummy row is encoded (every rank takes part in the sharder's collectives)
// and 0 rows are returned. With `all_layers`, [rows, (L + 1)·D]: every hidden state pooled alike.
at::Tensor encode_rows(const model::Encoder& encoder, shard::ShardedModel& sharded,
                       const std::vector<const std::vector<int64_t>*>& rows, const std::vector<int64_t>& row_keys,
                       bool bf16_autocast, bool all_layers = false);

}  // namespace angle::train
