// The sharder's constructor and its model::UnitSource side: each call hands over to the gather
// schedule (shard/gather_schedule.h) and, with gradients, to the reducer (shard/reducer.h).
#include "shard/fsdp.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "core/error.h"
#include "shard/flat_layout.h"
#include "shard/gather_schedule.h"
#include "shard/reducer.h"

namespace angle::shard {

ShardedModel::ShardedModel(model::Backbone& model, comm::Comm& comm, const ShardOptions& options,
                           const std::function<bool(const std::string&)>& decays, const model::ParameterFiles* files)
    : groups_(make_shard_groups(comm, options.replicate)),
      comm_(groups_->shard),
      options_(options),
      policy_(options.stage, options.param_dtype, options.reduce_dtype, groups_->shard.size(),  // checks the stage
              groups_->replicas) {
  c10::NoGradGuard no_grad;
  const auto named = model.named_parameters();
  f32_ = at::TensorOptions().device(options.device).dtype(at::kFloat);
  for (const model::Unit& unit : model.units()) units_.push_back(make_unit(unit, named, decays, files));
  ANGLE_CHECK(numel_ > 0, "the model has no trainable parameter");
  ledger_.reset_peak();
  gathers_ = std::make_unique<GatherSchedule>(comm_, policy_, ledger_, units_);
  reducer_ = std::make_unique<Reducer>(*groups_, options_, policy_, ledger_, units_, *gathers_, f32_);
}

ShardedModel::~ShardedModel() = default;

std::vector<at::Tensor> ShardedModel::acquire(size_t unit) {
  std::vector<at::Tensor> params = gathers_->acquire(unit);
  if (!c10::GradMode::is_enabled()) return params;
  reducer_->watch(unit, params);
  return params;
}

at::Tensor ShardedModel::release(size_t unit, const at::Tensor& output) {
  if (!gathers_->after_forward(unit, c10::GradMode::is_enabled() && output.requires_grad())) return output;
  // Before the unit's backward: gather it again (where its backward reads it), prefetch the next.
  output.register_hook([this, unit](const at::Tensor& grad) {
    reducer_->progress();
    gathers_->before_backward(unit);
    return grad;
  });
  return output;
}

at::Tensor ShardedModel::lookup(size_t unit, const at::Tensor& ids) {
  if (!units_[unit]->rows_only) return model::UnitSource::lookup(unit, ids);
  const UnitState& u = *units_[unit];
  const bool grad = c10::GradMode::is_enabled();  // no gradient: gradient caching's first pass
  if (unit == 0 && grad) reducer_->begin_forward();
  auto [rows, values] = gathers_->lookup_rows(unit, ids);
  c10::NoGradGuard no_grad;
  if (!grad || u.frozen) return at::embedding(values, at::searchsorted(rows, ids), -1, false, false);
  at::Tensor leaf = values.requires_grad_(true);
  reducer_->watch_rows(unit, leaf, rows);
  c10::AutoGradMode grad_on(true);
  return at::embedding(leaf, at::searchsorted(rows, ids), -1, false, false);
}

void ShardedModel::finish_backward() {
  reducer_->finish();
  gathers_->after_backward();
}

}  // namespace angle::shard
