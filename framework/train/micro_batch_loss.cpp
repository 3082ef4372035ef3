#include "train/micro_batch_loss.h"

#include <ATen/ATen.h>

#include "loss/gather.h"

namespace angle::train {

MicroBatchLoss micro_batch_loss(const at::Tensor& embeddings, const StepBatch& batch, const LossSettings& settings,
                                comm::Comm& comm) {
  const at::Device device = embeddings.device();
  at::Tensor labels = batch.labels.to(device);
  at::Tensor weights = settings.example_weights ? batch.weights.to(device) : at::Tensor();
  MicroBatchLoss out;
  // Which rows hold the same text: only the text rule of false negatives asks.
  const bool by_text = settings.weights.false_negatives == loss::FalseNegatives::text;
  auto objective = [&](const at::Tensor& labels, const at::Tensor& embeddings, const at::Tensor& weights,
                       const at::Tensor& texts) {
    auto angle = [&](const at::Tensor& cut) {
      return loss::angle_objective(settings.format, settings.weights, labels, cut, weights, texts);
    };
    if (settings.espresso.enabled) return loss::espresso_objective(settings.espresso, embeddings, settings.hidden, angle);
    return loss::matryoshka_objective(settings.matryoshka, embeddings, angle);
  };
  const int world = comm.size();
  if (settings.local_negatives && world > 1) {
    // The reference's per-device negatives: each rank's own loss, gradients averaged.
    const at::Tensor texts = by_text ? batch.local_text_hashes(comm.rank()).to(device) : at::Tensor();
    loss::LossValue value = batch.kept() > 0 ? objective(labels, embeddings, weights, texts)
                                             : loss::LossValue{embeddings.sum() * 0, {}};
    out.total = value.total / world;
    out.terms = value.terms;
    at::Tensor mean = at::full({1}, value.total.item<double>() / world, at::kDouble).to(comm.device());
    comm.all_reduce_sum(mean);
    out.value = mean.item<double>();
    return out;
  }
  at::Tensor all_embeddings = loss::gather_rows_with_grad(embeddings, comm, batch.rows_per_rank());
  at::Tensor all_labels = comm.all_gather_rows_known(labels, batch.kept_per_rank);
  at::Tensor all_weights = weights.defined() ? comm.all_gather_rows_known(weights, batch.kept_per_rank) : weights;
  loss::LossValue value = objective(all_labels, all_embeddings, all_weights,
                                    by_text ? batch.text_hashes.to(device) : at::Tensor());
  out.total = value.total;
  out.value = value.total.item<double>();
  out.terms = value.terms;
  return out;
}

}  // namespace angle::train
