// The flat layout of each unit, built by the sharder's constructor (shard/fsdp.h), and the storage
// tricks that let a unit's full buffer be freed and gathered again in place.
#include "shard/flat_layout.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "model/weights.h"
#include "shard/fsdp.h"

namespace angle::shard {

std::vector<at::Tensor> views(UnitState& u) {
  std::vector<at::Tensor> out;
  for (const auto& [frozen, i] : u.order) {
    const UnitState& part = frozen ? *u.frozen : u;
    out.push_back(at::empty({0}, part.full.options()).set_(part.full.storage(), part.full.storage_offset() + part.offsets[i],
                                                            part.shapes[i]));
  }
  return out;
}

namespace {

// Fills `out` with this rank's slice [u.begin, u.begin + u.shard) of the unit's flat values (the
// padding zero): read from the weights files for the parameters they hold, only the owned
// elements; else copied from the module's tensor (LoRA's adapters, a model built in memory).
void read_owned(const UnitState& u, const std::vector<std::string>& names, const model::ParameterFiles* files,
                at::Tensor out) {
  out.zero_();
  for (size_t i = 0; i < names.size(); ++i) {
    const auto [first, end] = u.owned_part(i);
    if (first >= end) continue;
    at::Tensor piece = out.narrow(0, first - u.begin, end - first);
    if (files && files->holds(names[i])) {
      files->read(names[i], first - u.offsets[i], piece);
      continue;
    }
    ANGLE_CHECK(model::has_storage(u.module_params[i]), "parameter '", names[i], "' has no values: it was released for "
                "loading by slices, but the weights files do not hold it");
    piece.copy_(u.module_params[i].reshape(-1).narrow(0, first - u.offsets[i], end - first));
  }
}

}  // namespace

// Lays out `params` (indices into `named`) as one flat buffer padded to the world size, this
// rank's slice of it as the master, and points the module's tensors at the gathered buffer. The
// slice is read alone (read_owned), in place; where the full buffer is kept (stages 1, 2), it is
// gathered from the ranks' slices: no rank holds a copy of the model that it does not keep.
void ShardedModel::lay_out(UnitState& u, const std::vector<size_t>& params,
                           const std::vector<std::pair<std::string, at::Tensor>>& named, bool frozen,
                           const model::ParameterFiles* files) {
  const int64_t world = comm_.size(), rank = comm_.rank();
  std::vector<std::string> names;
  for (size_t index : params) {
    const auto& [name, p] = named[index];
    ANGLE_CHECK(p.scalar_type() == at::kFloat, "sharding needs fp32 parameters; '", name, "' is ", p.scalar_type());
    if (!frozen) {
      layout_.push_back({name, p.sizes().vec(), numel_});
      numel_ += p.numel();
    }
    names.push_back(name);
    u.module_params.push_back(p);
    u.shapes.push_back(p.sizes().vec());
    u.offsets.push_back(u.numel);
    u.numels.push_back(p.numel());
    u.numel += p.numel();
  }
  u.padded = (u.numel + world - 1) / world * world;
  u.shard = u.padded / world;
  u.begin = u.shard * rank;
  u.full = at::empty({u.padded}, f32_.dtype(options_.param_dtype));
  // A matrix looked up by rows keeps only its shard, at every stage that shards.
  const bool keep_full = policy_.keeps_full_params && !u.rows_only;
  const bool views = policy_.views_are_module_params && !u.rows_only;
  if (views) {
    u.master = u.full.narrow(0, u.begin, u.shard);  // updated in place, then re-gathered
    read_owned(u, names, files, u.master);
    comm_.all_gather_into(u.master, u.full);
  } else {
    // A frozen shard is only ever gathered: it is kept in the dtype it is gathered in.
    u.master = at::empty({u.shard}, f32_);
    read_owned(u, names, files, u.master);
    if (frozen) u.master = u.master.to(options_.param_dtype);
    ledger_.add(MemoryLedger::kParams, bytes_of(u.master));
    if (keep_full) comm_.all_gather_into(u.master.to(options_.param_dtype), u.full);
  }
  u.materialized = keep_full;
  if (u.materialized) ledger_.add(MemoryLedger::kParams, bytes_of(u.full));
  else free_storage(u.full);
  for (size_t i = 0; i < u.module_params.size(); ++i) {
    at::Tensor& p = u.module_params[i];
    p.set_data(views ? u.full.narrow(0, u.offsets[i], u.numels[i]).view(u.shapes[i])
                     : at::empty({0}, f32_.dtype(p.scalar_type())));
  }
}

// One unit of the model: its trainable parameters laid out, then its frozen ones (if any), with
// the trainable shard's decay ranges, gradient and moments.
std::unique_ptr<UnitState> ShardedModel::make_unit(const model::Unit& unit,
                                                   const std::vector<std::pair<std::string, at::Tensor>>& named,
                                                   const std::function<bool(const std::string&)>& decays,
                                                   const model::ParameterFiles* files) {
  auto u = std::make_unique<UnitState>();
  u->name = unit.name;
  u->global_offset = numel_;
  u->sparse = unit.sparse_grad;
  u->rows_only = unit.sparse_grad && policy_.shards_grads;
  std::vector<size_t> trained, frozen;
  for (size_t index : unit.params) {
    const bool is_frozen = !named[index].second.requires_grad();
    u->order.emplace_back(is_frozen, is_frozen ? frozen.size() : trained.size());
    (is_frozen ? frozen : trained).push_back(index);
  }
  lay_out(*u, trained, named, false, files);
  if (!frozen.empty()) {
    u->frozen = std::make_unique<UnitState>();
    u->frozen->name = unit.name + " (frozen)";
    u->frozen->rows_only = u->rows_only;
    lay_out(*u->frozen, frozen, named, true, files);
  }
  u->backward_reads_params = unit.backward_reads_params;
  ANGLE_CHECK(!u->sparse || unit.params.size() == 1, "unit ", unit.name, ": a sparse gradient must be its only one");
  // Buckets never split a parameter (shard/reducer.h): each trainable dense one must fit.
  for (size_t i = 0; i < trained.size() && !u->sparse && options_.bucket_mb > 0; ++i) {
    const double mb = static_cast<double>(u->numels[i]) * c10::elementSize(options_.reduce_dtype) / (1 << 20);
    ANGLE_CHECK(mb <= options_.bucket_mb, "shard.bucket_mb = ", options_.bucket_mb, " is below the gradient of '",
                named[trained[i]].first, "' (", mb, " MiB in ", options_.reduce_dtype,
                "): raise it, or set 0 for one bucket per unit");
  }
  for (size_t i = 0; i < trained.size(); ++i) {
    const auto [first, end] = u->owned_part(i);
    if (first >= end || !decays(named[trained[i]].first)) continue;
    if (!u->decayed.empty() && u->decayed.back().second == first - u->begin) u->decayed.back().second = end - u->begin;
    else u->decayed.emplace_back(first - u->begin, end - u->begin);
  }
  u->grad = at::zeros({policy_.shards_grads ? u->shard : u->padded}, f32_);
  u->exp_avg = at::zeros({u->shard}, f32_);
  u->exp_avg_sq = at::zeros({u->shard}, f32_);
  ledger_.add(MemoryLedger::kGrads, bytes_of(u->grad));
  ledger_.add(MemoryLedger::kOptim, bytes_of(u->exp_avg) + bytes_of(u->exp_avg_sq));
  return u;
}

}  // namespace angle::shard
