#include "shard/reducer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

#include "core/error.h"

namespace angle::shard {

namespace {

// Called by autograd once a parameter's gradient is accumulated (parameters handed to the
// forward are fresh leaves sharing the gathered buffer): hands the gradient over and frees it.
class GradReady : public torch::autograd::PostAccumulateGradHook {
 public:
  GradReady(Reducer* owner, size_t unit, size_t param) : owner_(owner), unit_(unit), param_(param) {}
  // For a leaf that holds only some rows of an embedding matrix: its gradient becomes the sparse
  // gradient of the matrix of `shape`, at rows `rows`.
  GradReady(Reducer* owner, size_t unit, at::Tensor rows, std::vector<int64_t> shape)
      : owner_(owner), unit_(unit), param_(0), rows_(std::move(rows)), shape_(std::move(shape)) {}
  void operator()(const torch::autograd::Variable& leaf) override {
    at::Tensor grad = leaf.grad();
    const_cast<torch::autograd::Variable&>(leaf).mutable_grad().reset();
    if (rows_.defined()) grad = at::_sparse_coo_tensor_unsafe(rows_.unsqueeze(0), grad, shape_);
    owner_->gradient_ready(unit_, param_, std::move(grad));
  }

 private:
  Reducer* owner_;
  size_t unit_, param_;
  at::Tensor rows_;
  std::vector<int64_t> shape_;
};

}  // namespace

void Reducer::watch(size_t unit, std::vector<at::Tensor>& params) {
  if (unit == 0) begin_forward();
  const UnitState& u = *units_[unit];
  for (size_t i = 0; i < params.size(); ++i) {
    const auto [frozen, index] = u.order[i];
    if (frozen) continue;
    params[i].requires_grad_(true);
    torch::autograd::impl::set_post_acc_grad_hooks(params[i], std::make_unique<GradReady>(this, unit, index));
  }
}

void Reducer::watch_rows(size_t unit, const at::Tensor& leaf, const at::Tensor& rows) {
  torch::autograd::impl::set_post_acc_grad_hooks(leaf, std::make_unique<GradReady>(this, unit, rows, units_[unit]->shapes[0]));
}

void Reducer::begin_forward() {
  ANGLE_CHECK(!backward_open_ && arrived_.empty(), "sharded model: a forward began before the previous "
              "backward was finished (call finish_backward() after each backward)");
  backward_open_ = seek_cursor(units_.size() - 1);
}

// Points the cursor at the last trainable parameter of the nearest unit at or before `unit`;
// false when there is none (every reduction of this backward is issued).
bool Reducer::seek_cursor(size_t unit) {
  for (size_t u = unit + 1; u-- > 0;)
    if (!units_[u]->shapes.empty()) {
      cursor_ = {u, units_[u]->shapes.size() - 1};
      return true;
    }
  return false;
}

void Reducer::gradient_ready(size_t unit, size_t param, at::Tensor grad) {
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
    gathers_.unit_backward_done(*units_[u]);  // the unit's backward is complete
    backward_open_ = u > 0 && seek_cursor(u - 1);
  }
}

void Reducer::reduce(size_t unit, size_t param, at::Tensor grad) {
  c10::NoGradGuard no_grad;
  UnitState& u = *units_[unit];
  const int64_t held = grad.is_sparse() ? 0 : bytes_of(grad);
  if (u.sparse) {
    reduce_rows(u, grad);
    return;
  }
  at::Tensor flat = grad.reshape({-1});
  if (!policy_.shards_grads) {
    u.grad.narrow(0, u.offsets[param], u.numels[param]).add_(flat);
    ledger_.sub(MemoryLedger::kGrads, held);
    return;
  }
  // Each rank's slice of the unit that this parameter overlaps gets its piece, summed over ranks.
  // In fp32 the owner first adds what its shard gradient already holds (earlier micro-batches)
  // to its own piece, and the sum lands in the shard gradient directly: no receive buffer.
  // The gradient stays alive (and counted, by its last piece) until that piece is done.
  const bool direct = policy_.reduces_into_shard;
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

// Rows of the word-embedding gradient: (row index, values) of this rank's tokens. Stage 1 adds
// them to the local gradient; else every rank's rows are all-gathered and each rank keeps the sum
// of those in its slice, instead of reducing a dense vocab x hidden matrix.
void Reducer::reduce_rows(UnitState& u, const at::Tensor& grad) {
  const int64_t width = u.shapes[0][1];
  at::Tensor indices = grad._indices()[0].contiguous(), values = grad._values();
  if (!policy_.shards_grads) {
    u.grad.narrow(0, 0, u.numel).view({-1, width}).index_add_(0, indices, values.to(at::kFloat));
    return;
  }
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

// Lets the collectives in flight progress (MPI progresses non-blocking collectives only inside MPI
// calls, so backward calls this at every gradient and unit boundary) and collects finished ones.
void Reducer::progress() {
  while (!in_flight_.empty() && in_flight_.front()->work->test()) complete_oldest();
  gathers_.test();
}

void Reducer::complete_oldest() {
  std::unique_ptr<InFlight> f = std::move(in_flight_.front());
  in_flight_.pop_front();
  f->work->wait();
  if (f->accumulate) units_[f->unit]->grad.narrow(0, f->shard_offset, f->out.numel()).add_(f->out.to(at::kFloat));
  ledger_.sub(MemoryLedger::kGrads, f->bytes);
  in_flight_bytes_ -= f->bytes;
}

void Reducer::finish() {
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
}

}  // namespace angle::shard
