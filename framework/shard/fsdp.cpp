#include "shard/fsdp.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace angle::shard {

// A unit's trainable parameters, sharded with their gradient and optimizer state; its frozen
// ones (LoRA's base weights: requires_grad false) form a second, nested state of the same layout
// that is only sharded, gathered and freed: no gradient, no moments, no checkpoint.
struct ShardedModel::UnitState {
  std::string name;
  std::vector<at::Tensor> module_params;  // the model's own tensors
  std::vector<std::vector<int64_t>> shapes;
  std::vector<int64_t> offsets, numels;   // within the unit's flat buffer
  int64_t global_offset = 0, numel = 0, padded = 0, shard = 0, begin = 0;
  bool sparse = false;                    // the gradient arrives as rows (word embeddings)
  bool backward_reads_params = true;
  at::Tensor master;                      // fp32 [shard] (frozen: param_dtype)
  at::Tensor full;                        // param_dtype [padded]; storage freed when not materialised
  at::Tensor grad;                        // fp32: [padded] in stage 1, else [shard]
  at::Tensor exp_avg, exp_avg_sq, decay;  // fp32 [shard]
  bool materialized = false;
  comm::WorkPtr gathering;
  std::unique_ptr<UnitState> frozen;               // the unit's frozen parameters, if any
  std::vector<std::pair<bool, size_t>> order;      // each model parameter of the unit: (frozen, index in its part)
  int64_t real() const { return std::max<int64_t>(0, std::min(shard, numel - begin)); }  // owned elements before the padding
  // For a matrix unit of rows of `width`: the rows [first, end) that this rank's slice touches.
  std::pair<int64_t, int64_t> owned_rows(int64_t width) const { return {begin / width, (begin + real() + width - 1) / width}; }
};

// A reduction in flight: the piece of a gradient sent, and on the owner where its sum lands.
struct ShardedModel::InFlight {
  size_t unit;
  int64_t shard_offset = 0;  // where the sum lands in the owner's shard gradient
  at::Tensor send, out;      // out: the owner's receive buffer (the shard gradient itself in fp32)
  bool accumulate = false;   // out is a separate buffer to add into the shard gradient
  comm::WorkPtr work;
  int64_t bytes = 0;         // counted as gradient bytes until completed
};

namespace {

// Storage that can be dropped and re-allocated while the tensors sharing it (including those
// autograd saved for backward) keep their identity: FSDP's trick of resizing the storage to 0.
void free_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  s->set_data_ptr_noswap(s->allocator()->allocate(0));
  s->set_nbytes(0);
}
void alloc_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (s->nbytes() == bytes) return;
  s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
  s->set_nbytes(bytes);
}
int64_t bytes_of(const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.numel() * t.element_size()) : 0; }

}  // namespace

// Called by autograd once a parameter's gradient is accumulated (parameters handed to the
// forward are fresh leaves sharing the gathered buffer): hands the gradient over and frees it.
class GradReady : public torch::autograd::PostAccumulateGradHook {
 public:
  GradReady(ShardedModel* owner, size_t unit, size_t param) : owner_(owner), unit_(unit), param_(param) {}
  // For a leaf that holds only some rows of an embedding matrix: its gradient becomes the sparse
  // gradient of the matrix of `shape`, at rows `rows`.
  GradReady(ShardedModel* owner, size_t unit, at::Tensor rows, std::vector<int64_t> shape)
      : owner_(owner), unit_(unit), param_(0), rows_(std::move(rows)), shape_(std::move(shape)) {}
  void operator()(const torch::autograd::Variable& leaf) override {
    at::Tensor grad = leaf.grad();
    const_cast<torch::autograd::Variable&>(leaf).mutable_grad().reset();
    if (rows_.defined()) grad = at::_sparse_coo_tensor_unsafe(rows_.unsqueeze(0), grad, shape_);
    owner_->gradient_ready(unit_, param_, std::move(grad));
  }

 private:
  ShardedModel* owner_;
  size_t unit_, param_;
  at::Tensor rows_;
  std::vector<int64_t> shape_;
};

bool ShardedModel::views_are_module_params() const { return options_.stage < 3 && options_.param_dtype == at::kFloat; }

// Lays out `params` (indices into `named`) as one flat buffer padded to the world size, this
// rank's slice of it as the master, and points the module's tensors at the gathered buffer.
void ShardedModel::lay_out(UnitState& u, const std::vector<size_t>& params,
                           const std::vector<std::pair<std::string, at::Tensor>>& named, bool frozen) {
  const int64_t world = comm_.size(), rank = comm_.rank();
  for (size_t index : params) {
    const auto& [name, p] = named[index];
    ANGLE_CHECK(p.scalar_type() == at::kFloat, "sharding needs fp32 parameters; '", name, "' is ", p.scalar_type());
    if (!frozen) {
      layout_.push_back({name, p.sizes().vec(), numel_});
      numel_ += p.numel();
    }
    u.module_params.push_back(p);
    u.shapes.push_back(p.sizes().vec());
    u.offsets.push_back(u.numel);
    u.numels.push_back(p.numel());
    u.numel += p.numel();
  }
  u.padded = (u.numel + world - 1) / world * world;
  u.shard = u.padded / world;
  u.begin = u.shard * rank;
  at::Tensor flat = at::zeros({u.padded}, f32_);  // the unit's values, flat and padded with zeros
  for (size_t i = 0; i < params.size(); ++i) flat.narrow(0, u.offsets[i], u.numels[i]).copy_(u.module_params[i].reshape(-1));
  u.full = at::empty({u.padded}, f32_.dtype(options_.param_dtype));
  if (views_are_module_params()) {
    u.full.copy_(flat);
    u.master = u.full.narrow(0, u.begin, u.shard);  // updated in place, then re-gathered
  } else {
    // A frozen shard is only ever gathered: it is kept in the dtype it is gathered in.
    u.master = flat.narrow(0, u.begin, u.shard).to(frozen ? options_.param_dtype : at::kFloat).clone();
    ledger_.add(MemoryLedger::kParams, bytes_of(u.master));
    if (options_.stage < 3) u.full.copy_(flat);
  }
  u.materialized = options_.stage < 3;
  if (u.materialized) ledger_.add(MemoryLedger::kParams, bytes_of(u.full));
  else free_storage(u.full);
  for (size_t i = 0; i < u.module_params.size(); ++i) {
    at::Tensor& p = u.module_params[i];
    p.set_data(views_are_module_params() ? u.full.narrow(0, u.offsets[i], u.numels[i]).view(u.shapes[i])
                                         : at::empty({0}, p.options()));
  }
}

ShardedModel::ShardedModel(model::Backbone& model, comm::Comm& comm, const ShardOptions& options,
                           const std::function<bool(const std::string&)>& decays)
    : comm_(comm), options_(options) {
  ANGLE_CHECK(options.stage >= 1 && options.stage <= 3, "shard.stage ", options.stage, " (1, 2 or 3)");
  c10::NoGradGuard no_grad;
  const auto named = model.named_parameters();
  f32_ = named.front().second.options().dtype(at::kFloat).requires_grad(false);
  for (const model::Unit& unit : model.units()) {
    auto u = std::make_unique<UnitState>();
    u->name = unit.name;
    u->global_offset = numel_;
    std::vector<size_t> trained, frozen;
    for (size_t index : unit.params) {
      const bool is_frozen = !named[index].second.requires_grad();
      u->order.emplace_back(is_frozen, is_frozen ? frozen.size() : trained.size());
      (is_frozen ? frozen : trained).push_back(index);
    }
    lay_out(*u, trained, named, false);
    if (!frozen.empty()) {
      u->frozen = std::make_unique<UnitState>();
      u->frozen->name = unit.name + " (frozen)";
      lay_out(*u->frozen, frozen, named, true);
    }
    u->sparse = unit.sparse_grad;
    u->backward_reads_params = unit.backward_reads_params;
    ANGLE_CHECK(!u->sparse || unit.params.size() == 1, "unit ", unit.name, ": a sparse gradient must be its only one");
    const int64_t unit_numel = u->numel + (u->frozen ? u->frozen->numel : 0);
    const double mb = static_cast<double>(unit_numel) * c10::elementSize(options.param_dtype) / (1 << 20);
    ANGLE_CHECK(options.bucket_mb <= 0 || mb <= options.bucket_mb, "unit '", unit.name, "' has ", mb,
                " MiB of parameters, more than shard.bucket_mb = ", options.bucket_mb,
                " (raise it, or set 0 for no limit)");
    at::Tensor decay = at::zeros({u->padded}, f32_);
    for (size_t i = 0; i < trained.size(); ++i)
      if (decays(named[trained[i]].first)) decay.narrow(0, u->offsets[i], u->numels[i]).fill_(1);
    u->decay = decay.narrow(0, u->begin, u->shard).clone();
    u->grad = at::zeros({options.stage == 1 ? u->padded : u->shard}, f32_);
    u->exp_avg = at::zeros({u->shard}, f32_);
    u->exp_avg_sq = at::zeros({u->shard}, f32_);
    ledger_.add(MemoryLedger::kGrads, bytes_of(u->grad));
    ledger_.add(MemoryLedger::kOptim, bytes_of(u->exp_avg) + bytes_of(u->exp_avg_sq));
    units_.push_back(std::move(u));
  }
  ANGLE_CHECK(numel_ > 0, "the model has no trainable parameter");
  ledger_.reset_peak();
}

ShardedModel::~ShardedModel() = default;

// Fresh tensors on the gathered buffers, in the unit's parameter order (trainable and frozen).
std::vector<at::Tensor> ShardedModel::views(UnitState& u) const {
  std::vector<at::Tensor> out;
  for (const auto& [frozen, i] : u.order) {
    const UnitState& part = frozen ? *u.frozen : u;
    out.push_back(at::empty({0}, part.full.options()).set_(part.full.storage(), part.full.storage_offset() + part.offsets[i],
                                                            part.shapes[i]));
  }
  return out;
}

// The rank's own slot of the full buffer takes its master slice (in param_dtype), then the
// all-gather fills the others in place: no send copy.
comm::WorkPtr ShardedModel::gather_async(UnitState& u) {
  at::Tensor own = u.full.narrow(0, u.begin, u.shard);
  if (!views_are_module_params()) own.copy_(u.master);
  return comm_.all_gather_into_async(own, u.full);
}

void ShardedModel::start_gather(UnitState& u) {
  if (u.frozen) start_gather(*u.frozen);
  if (u.materialized || u.gathering) return;
  alloc_storage(u.full);
  ledger_.add(MemoryLedger::kParams, bytes_of(u.full));
  if (u.numel == 0) u.materialized = true;  // a unit that is all frozen
  else u.gathering = gather_async(u);
}

void ShardedModel::wait_gather(UnitState& u) {
  if (u.frozen) wait_gather(*u.frozen);
  if (!u.gathering) return;
  u.gathering->wait();
  u.gathering.reset();
  u.materialized = true;
}

void ShardedModel::free_unit(UnitState& u) {
  if (u.frozen) free_unit(*u.frozen);
  wait_gather(u);
  if (!u.materialized) return;
  free_storage(u.full);
  ledger_.sub(MemoryLedger::kParams, bytes_of(u.full));
  u.materialized = false;
}

std::vector<at::Tensor> ShardedModel::acquire(size_t unit) {
  UnitState& u = *units_[unit];
  start_gather(u);
  wait_gather(u);
  if (options_.stage == 3 && unit + 1 < units_.size()) start_gather(*units_[unit + 1]);  // prefetch
  std::vector<at::Tensor> params = views(u);
  if (!c10::GradMode::is_enabled()) return params;
  if (unit == 0) begin_forward();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto [frozen, index] = u.order[i];
    if (frozen) continue;
    params[i].requires_grad_(true);
    torch::autograd::impl::set_post_acc_grad_hooks(params[i], std::make_unique<GradReady>(this, unit, index));
  }
  return params;
}

// A forward with gradients begins: its reductions will start from the last trainable parameter.
void ShardedModel::begin_forward() {
  ANGLE_CHECK(!backward_open_ && arrived_.empty(), "sharded model: a forward began before the previous "
              "backward was finished (call finish_backward() after each backward)");
  backward_open_ = seek_cursor(units_.size() - 1);
}

// Points the cursor at the last trainable parameter of the nearest unit at or before `unit`;
// false when there is none (every reduction of this backward is issued).
bool ShardedModel::seek_cursor(size_t unit) {
  for (size_t u = unit + 1; u-- > 0;)
    if (!units_[u]->shapes.empty()) {
      cursor_ = {u, units_[u]->shapes.size() - 1};
      return true;
    }
  return false;
}

at::Tensor ShardedModel::lookup(size_t unit, const at::Tensor& ids) {
  UnitState& u = *units_[unit];
  if (options_.stage < 3) return model::UnitSource::lookup(unit, ids);
  const bool grad = c10::GradMode::is_enabled();  // no gradient: gradient caching's first pass
  if (unit == 0 && grad) begin_forward();
  if (unit + 1 < units_.size()) start_gather(*units_[unit + 1]);  // prefetch, as acquire() does
  c10::NoGradGuard no_grad;
  // The rows every rank needs, sorted and unique.
  at::Tensor mine = std::get<0>(at::_unique(ids.reshape({-1}), /*sorted=*/true));
  at::Tensor rows = std::get<0>(at::_unique(comm_.all_gather_rows(mine), /*sorted=*/true));
  // Each rank fills the elements of those rows that lie in its slice; the sum completes them.
  const UnitState& held = u.frozen ? *u.frozen : u;  // a frozen matrix (LoRA) gets no gradient
  const int64_t width = held.shapes[0][1], real = held.real();
  at::Tensor values = at::zeros({rows.size(0), width}, held.full.options());
  if (real > 0) {
    const auto [first_row, end_row] = held.owned_rows(width);
    at::Tensor part = at::zeros({(end_row - first_row) * width}, held.full.options());
    part.narrow(0, held.begin - first_row * width, real).copy_(held.master.narrow(0, 0, real));
    at::Tensor inside = (rows >= first_row).logical_and_(rows < end_row).nonzero().squeeze(1);
    values.index_copy_(0, inside, part.view({-1, width}).index_select(0, rows.index_select(0, inside) - first_row));
  }
  comm_.all_reduce_sum(values);
  if (!grad || u.frozen) return at::embedding(values, at::searchsorted(rows, ids), -1, false, false);
  at::Tensor leaf = values.requires_grad_(true);
  torch::autograd::impl::set_post_acc_grad_hooks(leaf, std::make_unique<GradReady>(this, unit, rows, u.shapes[0]));
  c10::AutoGradMode grad_on(true);
  return at::embedding(leaf, at::searchsorted(rows, ids), -1, false, false);
}

at::Tensor ShardedModel::release(size_t unit, const at::Tensor& output) {
  if (options_.stage < 3) return output;
  UnitState& u = *units_[unit];
  if (!(c10::GradMode::is_enabled() && output.requires_grad())) {
    free_unit(u);
    return output;
  }
  if (unit + 1 < units_.size()) free_unit(u);  // the last unit's backward comes next: keep it
  // Before the unit's backward: gather it again (where its backward reads it), prefetch the next.
  output.register_hook([this, unit](const at::Tensor& grad) {
    before_backward(unit);
    return grad;
  });
  return output;
}

void ShardedModel::before_backward(size_t unit) {
  progress();
  // A unit with frozen parameters is freed once backward has moved below it: its last trainable
  // gradient may arrive before autograd is done with its frozen weights (the input gradient of
  // a projection whose adapter is finished), so that arrival cannot free it as it frees others.
  if (options_.stage == 3)
    for (size_t above = unit + 1; above < units_.size(); ++above)
      if (units_[above]->frozen) free_unit(*units_[above]);
  UnitState& u = *units_[unit];
  if (u.backward_reads_params) {
    start_gather(u);
    wait_gather(u);
  }
  for (size_t previous = unit; previous-- > 0;)  // prefetch the next unit that backward will need
    if (units_[previous]->backward_reads_params) {
      start_gather(*units_[previous]);
      break;
    }
}

void ShardedModel::gradient_ready(size_t unit, size_t param, at::Tensor grad) {
  progress();
  ledger_.add(MemoryLedger::kGrads, grad.is_sparse() ? 0 : bytes_of(grad));
  arrived_[{unit, param}] = std::move(grad);
  // Issue every gradient whose turn has come.
  while (backward_open_) {
    auto next = arrived_.find(cursor_);
    if (next == arrived_.end()) break;
    at::Tensor g = std::move(next->second);
    arrived_.erase(next);
    const auto [u, p] = cursor_;
    reduce(u, p, std::move(g));
    if (p > 0) {
      cursor_.second = p - 1;
      continue;
    }
    // The unit's backward is complete: its gathered parameters can go (with frozen ones: later).
    if (options_.stage == 3 && !units_[u]->frozen) free_unit(*units_[u]);
    backward_open_ = u > 0 && seek_cursor(u - 1);
  }
}

void ShardedModel::reduce(size_t unit, size_t param, at::Tensor grad) {
  c10::NoGradGuard no_grad;
  UnitState& u = *units_[unit];
  const int64_t held = grad.is_sparse() ? 0 : bytes_of(grad);
  if (u.sparse) {
    // Rows of the word-embedding gradient: (row index, values) of this rank's tokens.
    const int64_t width = u.shapes[0][1];
    at::Tensor indices = grad._indices()[0].contiguous(), values = grad._values();
    if (options_.stage == 1) {
      u.grad.narrow(0, 0, u.numel).view({-1, width}).index_add_(0, indices, values.to(at::kFloat));
    } else {
      std::vector<int64_t> counts;
      at::Tensor all_indices = comm_.all_gather_rows(indices, &counts);
      at::Tensor all_values = comm_.all_gather_rows_known(values.to(options_.reduce_dtype).contiguous(), counts);
      ledger_.add(MemoryLedger::kGrads, bytes_of(all_values));
      if (const int64_t real = u.real(); real > 0) {
        const auto [first_row, end_row] = u.owned_rows(width);
        // Summed per distinct row first (in arrival order, as one index_add would), then added to the
        // shard in place: whole rows through a row view, and the at most two rows that straddle the
        // shard's ends by their overlap. No buffer of all the owned rows (47 MB of fresh pages every
        // step for MiniLM's word embeddings at one rank).
        at::Tensor mine = (all_indices >= first_row).logical_and_(all_indices < end_row).nonzero().squeeze(1);
        const auto [rows, slot] = at::_unique(all_indices.index_select(0, mine), /*sorted=*/true, /*return_inverse=*/true);
        at::Tensor sums = at::zeros({rows.size(0), width}, u.grad.options())
                              .index_add_(0, slot, all_values.index_select(0, mine).to(at::kFloat));
        const int64_t whole_first = (u.begin + width - 1) / width, whole_end = (u.begin + real) / width;
        at::Tensor whole = (rows >= whole_first).logical_and_(rows < whole_end).nonzero().squeeze(1);
        if (whole_end > whole_first)
          u.grad.narrow(0, whole_first * width - u.begin, (whole_end - whole_first) * width)
              .view({-1, width})
              .index_add_(0, rows.index_select(0, whole) - whole_first, sums.index_select(0, whole));
        at::Tensor partial = (rows < whole_first).logical_or_(rows >= whole_end).nonzero().squeeze(1);
        for (int64_t i = 0; i < partial.numel(); ++i) {
          const int64_t slot_i = partial[i].item<int64_t>(), row = rows[slot_i].item<int64_t>();
          const int64_t from = std::max(row * width, u.begin), to = std::min((row + 1) * width, u.begin + real);
          u.grad.narrow(0, from - u.begin, to - from).add_(sums[slot_i].narrow(0, from - row * width, to - from));
        }
      }
      ledger_.sub(MemoryLedger::kGrads, bytes_of(all_values));
    }
    return;
  }
  at::Tensor flat = grad.reshape({-1});
  if (options_.stage == 1) {
    u.grad.narrow(0, u.offsets[param], u.numels[param]).add_(flat);
    ledger_.sub(MemoryLedger::kGrads, held);
    return;
  }
  // Each rank's slice of the unit that this parameter overlaps gets its piece, summed over ranks.
  // In fp32 the owner first adds what its shard gradient already holds (earlier micro-batches)
  // to its own piece, and the sum lands in the shard gradient directly: no receive buffer.
  // The gradient stays alive (and counted, by its last piece) until that piece is done.
  const bool direct = options_.reduce_dtype == at::kFloat;
  const int64_t begin = u.offsets[param], end = begin + u.numels[param];
  const int first = static_cast<int>(begin / u.shard), last = static_cast<int>((end - 1) / u.shard);
  for (int owner = first; owner <= last; ++owner) {
    const int64_t from = std::max(begin, owner * u.shard), to = std::min(end, (owner + 1) * u.shard);
    auto f = std::make_unique<InFlight>();
    f->unit = unit;
    f->shard_offset = from - owner * u.shard;
    f->send = flat.narrow(0, from - begin, to - from).to(options_.reduce_dtype).contiguous();
    at::Tensor destination = u.grad.narrow(0, f->shard_offset, to - from);
    if (owner == comm_.rank()) {
      if (direct) f->send.add_(destination);
      f->out = direct ? destination : at::empty({to - from}, f->send.options());
      f->accumulate = !direct;
    }
    f->bytes = (f->accumulate ? bytes_of(f->out) : 0) + (f->send.is_alias_of(flat) ? 0 : bytes_of(f->send)) +
               (owner == last ? held : 0);
    ledger_.add(MemoryLedger::kGrads, f->bytes - (owner == last ? held : 0));  // the last piece takes `held` over
    f->work = comm_.reduce_sum_async(f->send, f->out, owner);
    in_flight_bytes_ += f->bytes;
    in_flight_.push_back(std::move(f));
    progress();
    // Bounded: past the budget, the oldest reductions are finished before backward goes on.
    while (in_flight_bytes_ > options_.inflight_bytes && in_flight_.size() > 1) complete_oldest();
  }
}

// Lets the collectives in flight progress (MPI progresses non-blocking collectives only inside MPI
// calls, so backward calls this at every gradient and unit boundary) and collects finished ones.
void ShardedModel::progress() {
  while (!in_flight_.empty() && in_flight_.front()->work->test()) complete_oldest();
  for (auto& u : units_)
    if (u->gathering) u->gathering->test();
}

void ShardedModel::complete_oldest() {
  std::unique_ptr<InFlight> f = std::move(in_flight_.front());
  in_flight_.pop_front();
  f->work->wait();
  if (f->accumulate) units_[f->unit]->grad.narrow(0, f->shard_offset, f->out.numel()).add_(f->out.to(at::kFloat));
  ledger_.sub(MemoryLedger::kGrads, f->bytes);
  in_flight_bytes_ -= f->bytes;
}

void ShardedModel::finish_backward() {
  // Parameters that got no gradient on this rank still take part, with zeros, in the same order.
  while (backward_open_) {
    const auto [u, p] = cursor_;
    UnitState& unit = *units_[u];
    if (!arrived_.count(cursor_)) {
      at::Tensor zeros = unit.sparse ? at::_sparse_coo_tensor_unsafe(at::zeros({1, 0}, f32_.dtype(at::kLong)),
                                                                     at::zeros({0, unit.shapes[0][1]}, f32_),
                                                                     unit.shapes[0])
                                     : at::zeros(unit.shapes[p], f32_);
      gradient_ready(u, p, zeros);
    }
  }
  while (!in_flight_.empty()) complete_oldest();
  arrived_.clear();
  if (options_.stage == 3)
    for (auto& u : units_) free_unit(*u);
}

double ShardedModel::step(double lr, double max_grad_norm) {
  finish_backward();
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> shard_grads;
  int64_t step_bytes = 0;  // stage 1 on several ranks: the reduced shards exist only during the step
  if (options_.stage == 1 && !(comm_.size() == 1 && options_.reduce_dtype == at::kFloat)) {
    std::vector<comm::WorkPtr> works;
    std::vector<at::Tensor> sends;
    for (auto& u : units_) {
      sends.push_back(u->grad.to(options_.reduce_dtype));
      shard_grads.push_back(at::empty({u->shard}, sends.back().options()));
      step_bytes += bytes_of(shard_grads.back()) + (sends.back().is_same(u->grad) ? 0 : bytes_of(sends.back()));
      works.push_back(u->numel > 0 ? comm_.reduce_scatter_sum_async(sends.back(), shard_grads.back()) : nullptr);
    }
    ledger_.add(MemoryLedger::kGrads, step_bytes);
    for (size_t i = 0; i < units_.size(); ++i) {
      if (works[i]) works[i]->wait();
      shard_grads[i] = shard_grads[i].to(at::kFloat);
    }
  } else {
    for (auto& u : units_) shard_grads.push_back(u->grad);
  }
  at::Tensor norm_sq = at::zeros({1}, f32_.dtype(at::kDouble));
  // In double, a slice at a time: a double copy of a whole shard gradient would be 94 MB of fresh
  // pages every step for MiniLM's word embeddings at one rank (beyond glibc's 32 MiB mmap ceiling,
  // so never reused), where an 8 MB slice is reused from the heap.
  constexpr int64_t kSlice = 1 << 20;
  for (const at::Tensor& g : shard_grads)
    for (int64_t begin = 0; begin < g.numel(); begin += kSlice)
      norm_sq += at::linalg_vector_norm(g.narrow(0, begin, std::min(kSlice, g.numel() - begin)), 2, c10::nullopt, false,
                                        at::kDouble).pow(2);
  comm_.all_reduce_sum(norm_sq);
  const double norm = std::sqrt(norm_sq.item<double>());
  const double coefficient = max_grad_norm > 0 ? max_grad_norm / (norm + 1e-6) : 1.0;  // as clip_grad_norm_
  ++step_;
  for (size_t i = 0; i < units_.size(); ++i) {
    UnitState& u = *units_[i];
    adamw_update(u.master, shard_grads[i], u.exp_avg, u.exp_avg_sq, u.decay, step_, lr, options_.adam,
                 std::min(coefficient, 1.0));
    u.grad.zero_();
  }
  shard_grads.clear();
  ledger_.sub(MemoryLedger::kGrads, step_bytes);
  gather_all_params();
  return norm;
}

// After the master shards changed: stages 1 and 2 gather every unit again; stage 3 drops
// whatever is still materialised (it is gathered when next needed).
void ShardedModel::gather_all_params() {
  if (options_.stage == 3) {
    for (auto& u : units_) free_unit(*u);
    return;
  }
  std::vector<comm::WorkPtr> works;  // frozen parameters never change: they stay as gathered
  for (auto& u : units_)
    if (u->numel > 0) works.push_back(gather_async(*u));
  for (auto& w : works) w->wait();
}

void ShardedModel::gather_full() {
  if (views_are_module_params() || full_gathered_) return;
  c10::NoGradGuard no_grad;
  auto gather = [&](UnitState& u) {
    if (u.numel == 0) return;
    at::Tensor full = at::empty({u.padded}, u.master.options());
    comm_.all_gather_into(u.master, full);
    full = full.to(at::kFloat);  // a frozen shard is kept in param_dtype
    ledger_.add(MemoryLedger::kParams, bytes_of(full));
    for (size_t i = 0; i < u.module_params.size(); ++i)
      u.module_params[i].set_data(full.narrow(0, u.offsets[i], u.numels[i]).view(u.shapes[i]));
  };
  for (auto& u : units_) {
    gather(*u);
    if (u->frozen) gather(*u->frozen);
  }
  full_gathered_ = true;
}

void ShardedModel::release_full() {
  if (!full_gathered_) return;
  auto release = [&](UnitState& u) {
    for (at::Tensor& p : u.module_params) p.set_data(at::empty({0}, p.options()));
    if (u.numel > 0) ledger_.sub(MemoryLedger::kParams, u.padded * 4);
  };
  for (auto& u : units_) {
    release(*u);
    if (u->frozen) release(*u->frozen);
  }
  full_gathered_ = false;
}

std::vector<ShardedModel::Range> ShardedModel::owned_ranges() const {
  std::vector<Range> out;
  for (const auto& u : units_)
    if (u->real() > 0) out.push_back({u->global_offset + u->begin, u->real()});
  return out;
}

at::Tensor ShardedModel::owned(const std::string& what) const {
  std::vector<at::Tensor> parts;
  for (const auto& u : units_) {
    if (what == "grads") {  // stage 1 holds the whole unit's local gradient until step()
      parts.push_back(u->grad.narrow(0, options_.stage == 1 ? u->begin : 0, u->real()));
      continue;
    }
    const at::Tensor& t = what == "params" ? u->master : what == "exp_avg" ? u->exp_avg : u->exp_avg_sq;
    parts.push_back(t.narrow(0, 0, u->real()));
  }
  return at::cat(parts);
}

void ShardedModel::restore(const std::function<at::Tensor(const std::string&, int64_t, int64_t)>& read, int64_t steps) {
  c10::NoGradGuard no_grad;
  for (auto& u : units_) {
    const int64_t real = u->real(), begin = u->global_offset + u->begin;
    for (auto [name, t] : {std::pair{"params", &u->master}, {"exp_avg", &u->exp_avg}, {"exp_avg_sq", &u->exp_avg_sq}}) {
      t->zero_();  // the padding stays 0
      if (real > 0) t->narrow(0, 0, real).copy_(read(name, begin, begin + real));
    }
    u->grad.zero_();
  }
  step_ = steps;
  gather_all_params();
}

}  // namespace angle::shard
