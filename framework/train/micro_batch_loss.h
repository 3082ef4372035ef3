// The loss phase of a micro-batch: AnglE's objective over the *global* micro-batch. Every rank
// gathers all ranks' embedding rows (with exact gradients, loss/gather.h), labels and weights, and
// computes the same loss. Rows stay grouped by example ([q, p, n] of one example are adjacent on
// every rank and so in the gathered batch), which keeps each hard negative with its query however
// unevenly the rows are split. With loss.local_negatives, each rank's own loss instead (the
// reference's per-device negatives). The objective is AnglE's, or its sum over Matryoshka sizes, or
// Espresso's over every layer; false negatives are masked by the texts' hashes, gathered like the rows.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "comm/comm.h"
#include "loss/angle_loss.h"
#include "loss/espresso.h"
#include "loss/matryoshka.h"
#include "train/step_batch.h"

namespace angle::train {

struct LossSettings {
  loss::Format format = loss::Format::A;
  loss::Weights weights;
  bool example_weights = false;  // pass the batch's per-example weights to the loss
  bool local_negatives = false;
  loss::Matryoshka matryoshka;  // off: the objective on the whole embedding
  loss::Espresso espresso;      // on: embeddings are every layer's, side by side (train/encode.h)
  int64_t hidden = 0;           // the width of one layer's embedding
};

struct MicroBatchLoss {
  at::Tensor total;                     // differentiable: what this rank back-propagates
  double value = 0;                     // the micro-batch's loss (averaged over ranks when local)
  std::map<std::string, double> terms;  // unweighted terms (this rank's, when local)
};

// Collective. `embeddings` are this rank's rows of `batch` [kept x rows_per_example, D].
MicroBatchLoss micro_batch_loss(const at::Tensor& embeddings, const StepBatch& batch, const LossSettings& settings,
                                comm::Comm& comm);

}  // namespace angle::train
