#include "shard/reducer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <climits>
#include <numeric>

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

Reducer::Reducer(const ShardGroups& groups, const ShardOptions& options, const StagePolicy& policy,
                 MemoryLedger& ledger, Units& units, GatherSchedule& gathers, const at::TensorOptions& f32)
    : groups_(groups), comm_(groups.shard), options_(options), policy_(policy), ledger_(ledger), units_(units),
      gathers_(gathers), f32_(f32) {
  std::vector<std::vector<size_t>> order(units_.size());  // until the first backward: last to first
  for (size_t u = 0; u < units_.size(); ++u)
    for (size_t p = units_[u]->shapes.size(); p-- > 0;) order[u].push_back(p);
  build_buckets(order);
  for (size_t b = 0; b + 1 < buckets_.size(); ++b) learn_order_ |= buckets_[b].unit == buckets_[b + 1].unit;
  delivered_.resize(units_.size());
}

// Buckets in issue order: units last to first, each unit's parameters in `order[unit]` cut where
// a bucket would pass shard.bucket_mb (flat_layout.cpp checked that every parameter fits one).
void Reducer::build_buckets(const std::vector<std::vector<size_t>>& order) {
  buckets_.clear();
  where_.assign(units_.size(), {});
  const int64_t limit = options_.bucket_mb > 0
                            ? static_cast<int64_t>(options_.bucket_mb * (1 << 20)) /
                                  static_cast<int64_t>(c10::elementSize(options_.reduce_dtype))
                            : INT64_MAX;
  for (size_t u = units_.size(); u-- > 0;) {
    const UnitState& unit = *units_[u];
    where_[u].resize(unit.shapes.size());
    if (unit.shapes.empty()) continue;  // nothing to train
    std::vector<size_t> group;
    int64_t size = 0;
    for (size_t p : order[u]) {
      if (!group.empty() && !unit.sparse && size + unit.numels[p] > limit) {
        add_bucket(u, group);
        group.clear(), size = 0;
      }
      group.push_back(p), size += unit.numels[p];
    }
    add_bucket(u, group);
    buckets_.back().last_of_unit = true;
  }
}

// A bucket of the unit's `params`: its send buffer holds each rank's piece in rank order.
void Reducer::add_bucket(size_t unit, const std::vector<size_t>& params) {
  const UnitState& u = *units_[unit];
  Bucket b;
  b.unit = unit;
  b.sparse = u.sparse;
  b.params = params;
  b.arrived.assign(params.size(), false);
  b.pieces.resize(params.size());
  b.counts.assign(comm_.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) where_[unit][params[i]] = {buckets_.size(), i};
  // Inside a rank's piece the parameters keep the unit's own order, so that the piece is one run
  // of the rank's shard where the bucket holds neighbouring parameters (a whole unit: all of it).
  std::vector<size_t> in_unit_order(params.size());
  std::iota(in_unit_order.begin(), in_unit_order.end(), size_t{0});
  std::sort(in_unit_order.begin(), in_unit_order.end(), [&](size_t a, size_t c) { return params[a] < params[c]; });
  for (int r = 0; r < comm_.size() && !b.sparse; ++r)
    for (size_t i : in_unit_order) {
      const int64_t begin = u.offsets[params[i]], end = begin + u.numels[params[i]];
      const int64_t from = std::max(begin, r * u.shard), to = std::min(end, (r + 1) * u.shard);
      if (from >= to) continue;
      b.pieces[i].push_back({from - begin, to - from, b.numel});
      if (r == comm_.rank()) {
        if (!b.mine.empty() && b.mine.back().first + b.mine.back().second == from - r * u.shard)
          b.mine.back().second += to - from;  // continues the previous run
        else
          b.mine.emplace_back(from - r * u.shard, to - from);
      }
      b.counts[r] += to - from, b.numel += to - from;
    }
  buckets_.push_back(std::move(b));
}

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
  ANGLE_CHECK(!backward_open_, "sharded model: a forward began before the previous backward was finished (call "
              "finish_backward() after each backward)");
  cursor_ = 0;
  backward_open_ = !buckets_.empty();
  recording_ = learn_order_ && !learned_;
}

void Reducer::gradient_ready(size_t unit, size_t param, at::Tensor grad) {
  progress();
  if (recording_) delivered_[unit].push_back(param);
  const auto [index, slot] = where_[unit][param];
  Bucket& b = buckets_[index];
  ANGLE_CHECK(!b.arrived[slot], "sharded model: a second gradient for parameter ", param, " of unit ",
              units_[unit]->name, " in one backward");
  b.arrived[slot] = true, ++b.count;
  UnitState& u = *units_[unit];
  c10::NoGradGuard no_grad;
  if (b.sparse) {
    b.rows = std::move(grad);
  } else if (policy_.adds_grads_locally) {
    u.grad.narrow(0, u.offsets[param], u.numels[param]).add_(grad.reshape({-1}));
  } else {
    if (!b.send.defined()) {
      // Bounded: a new bucket waits until the reductions in flight leave room for it.
      const int64_t need = b.numel * static_cast<int64_t>(c10::elementSize(options_.reduce_dtype));
      while (!in_flight_.empty() && in_flight_bytes_ + need > options_.inflight_bytes) complete_oldest();
      b.send = at::empty({b.numel}, f32_.dtype(options_.reduce_dtype));
      ledger_.add(MemoryLedger::kGrads, bytes_of(b.send));
    }
    const at::Tensor flat = grad.reshape({-1});
    for (const Piece& piece : b.pieces[slot])
      b.send.narrow(0, piece.at, piece.size).copy_(flat.narrow(0, piece.from, piece.size));
  }
  grad.reset();  // freed here, not when autograd lets go of it
  issue_ready();
}

// Issues every complete bucket whose turn has come.
void Reducer::issue_ready() {
  while (backward_open_ && buckets_[cursor_].complete()) {
    const size_t index = cursor_++;
    issue(index);
    if (buckets_[index].last_of_unit) gathers_.unit_backward_done(*units_[buckets_[index].unit]);
    backward_open_ = cursor_ < buckets_.size();
  }
}

void Reducer::issue(size_t index) {
  Bucket& b = buckets_[index];
  b.arrived.assign(b.arrived.size(), false), b.count = 0;
  if (b.sparse) {
    const at::Tensor rows = std::move(b.rows);
    reduce_rows(*units_[b.unit], rows);
    return;
  }
  if (policy_.adds_grads_locally) return;
  auto f = std::make_unique<InFlight>();
  f->bucket = index;
  f->send = std::move(b.send);
  UnitState& u = *units_[b.unit];
  const int me = comm_.rank();
  // fp32, one piece here and no replicas: this rank's part of the send buffer first takes what
  // the shard gradient holds (earlier micro-batches), and the sum lands in the shard gradient
  // itself: no receive buffer.
  f->direct = !groups_.replica && f->send.scalar_type() == at::kFloat && b.mine.size() == 1;
  if (f->direct) {
    const auto [offset, size] = b.mine[0];
    const int64_t before = std::accumulate(b.counts.begin(), b.counts.begin() + me, int64_t{0});
    f->received = u.grad.narrow(0, offset, size);
    f->send.narrow(0, before, size).add_(f->received);
  } else {
    f->received = at::empty({b.counts[me]}, f->send.options());
    ledger_.add(MemoryLedger::kGrads, bytes_of(f->received));
  }
  f->bytes = bytes_of(f->send) + (f->direct ? 0 : bytes_of(f->received));
  f->work = comm_.reduce_scatter_counts_async(f->send, f->received, b.counts);
  in_flight_bytes_ += f->bytes;
  in_flight_.push_back(std::move(f));
  progress();
  // Bounded: past the budget, the oldest reductions are finished before backward goes on.
  while (in_flight_bytes_ > options_.inflight_bytes && in_flight_.size() > 1) complete_oldest();
}

// Rows of the word-embedding gradient: (row index, values) of this rank's tokens. Stage 1 (and one
// rank) adds them to the local gradient. Else every rank's rows (of every replica) are
// all-gathered and each rank keeps the sum of those in its slice, instead of reducing a dense
// vocab x hidden matrix; once the ranks' rows together outnumber the matrix's (many ranks), the
// dense matrix is cheaper: reduce_dense().
void Reducer::reduce_rows(UnitState& u, const at::Tensor& grad) {
  const int64_t width = u.shapes[0][1];
  at::Tensor indices = grad._indices()[0].contiguous(), values = grad._values();
  if (policy_.adds_grads_locally) {  // stage 1, or one rank: the whole gradient is here
    u.grad.narrow(0, 0, u.numel).view({-1, width}).index_add_(0, indices, values.to(at::kFloat));
    return;
  }
  const std::vector<int64_t> counts = groups_.world.row_counts(indices.numel());
  if (std::accumulate(counts.begin(), counts.end(), int64_t{0}) >= u.shapes[0][0])
    return reduce_dense(u, indices, values);
  at::Tensor all_indices = groups_.world.all_gather_rows_known(indices, counts);
  at::Tensor all_values = groups_.world.all_gather_rows_known(values.to(options_.reduce_dtype).contiguous(), counts);
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

// The rows summed into this rank's dense [padded] gradient of the matrix, reduce-scattered in the
// shard group (then summed across replicas): a bucket of one parameter, waited for at once (the
// word embeddings are the last unit of a backward).
void Reducer::reduce_dense(UnitState& u, const at::Tensor& indices, const at::Tensor& values) {
  at::Tensor dense = at::zeros({u.padded}, f32_);
  dense.narrow(0, 0, u.numel).view({-1, u.shapes[0][1]}).index_add_(0, indices, values.to(at::kFloat));
  at::Tensor send = dense.to(options_.reduce_dtype), mine = at::empty({u.shard}, send.options());
  const int64_t bytes = bytes_of(dense) + (send.is_same(dense) ? 0 : bytes_of(send)) + bytes_of(mine);
  ledger_.add(MemoryLedger::kGrads, bytes);
  comm_.reduce_scatter_sum_async(send, mine)->wait();
  if (groups_.replica) groups_.replica->all_reduce_sum(mine);
  u.grad.add_(mine.to(at::kFloat));
  ledger_.sub(MemoryLedger::kGrads, bytes);
}

// Lets the collectives in flight progress (MPI progresses non-blocking collectives only inside MPI
// calls, so backward calls this at every gradient and unit boundary) and collects finished ones.
void Reducer::progress() {
  while (!in_flight_.empty() && advance_oldest(false)) {
  }
  gathers_.test();
}

// Moves the oldest reduction on once its collective is done (`block`: waits for it): after the
// reduce-scatter, the all-reduce across replicas (if any); after that, the piece lands in the shard
// gradient. False when it is still running.
bool Reducer::advance_oldest(bool block) {
  InFlight& f = *in_flight_.front();
  if (!block && !f.work->test()) return false;
  f.work->wait();
  if (groups_.replica && !f.across) {
    f.across = true;
    f.work = groups_.replica->all_reduce_sum_async(f.received);
    if (!block) return true;
    f.work->wait();
  }
  land(f);
  in_flight_.pop_front();
  return true;
}

void Reducer::land(const InFlight& f) {
  const Bucket& b = buckets_[f.bucket];
  UnitState& u = *units_[b.unit];
  const at::Tensor received = f.received.to(at::kFloat);
  int64_t at = 0;
  for (const auto& [offset, size] : b.mine) {
    if (!f.direct) u.grad.narrow(0, offset, size).add_(received.narrow(0, at, size));
    at += size;
  }
  ledger_.sub(MemoryLedger::kGrads, f.bytes);
  in_flight_bytes_ -= f.bytes;
}

void Reducer::finish() {
  // Parameters that got no gradient on this rank still take part, with zeros, in the same order.
  while (backward_open_) {
    const Bucket& b = buckets_[cursor_];  // incomplete: a complete one at the cursor is issued
    size_t slot = 0;
    while (b.arrived[slot]) ++slot;
    const size_t unit = b.unit, param = b.params[slot];
    const UnitState& u = *units_[unit];
    at::Tensor zeros = u.sparse ? at::_sparse_coo_tensor_unsafe(at::zeros({1, 0}, f32_.dtype(at::kLong)),
                                                                at::zeros({0, u.shapes[0][1]}, f32_), u.shapes[0])
                                : at::zeros(u.shapes[param], f32_);
    gradient_ready(unit, param, zeros);
  }
  while (!in_flight_.empty()) complete_oldest();
  if (recording_) share_order();
}

// After the first backward: every rank takes rank 0's delivery order and rebuilds its buckets.
void Reducer::share_order() {
  recording_ = false, learned_ = true;
  std::vector<int64_t> flat;
  for (size_t u = 0; u < units_.size(); ++u) {
    ANGLE_CHECK(delivered_[u].size() == units_[u]->shapes.size(), "sharded model: unit ", units_[u]->name, " delivered ",
                delivered_[u].size(), " gradients for ", units_[u]->shapes.size(), " parameters");
    flat.insert(flat.end(), delivered_[u].begin(), delivered_[u].end());
  }
  at::Tensor shared = at::tensor(flat, at::kLong).to(groups_.world.device());
  groups_.world.broadcast(shared, 0);
  shared = shared.cpu();
  std::vector<std::vector<size_t>> order(units_.size());
  int64_t at = 0;
  for (size_t u = 0; u < units_.size(); ++u)
    for (size_t p = 0; p < units_[u]->shapes.size(); ++p)
      order[u].push_back(static_cast<size_t>(shared[at++].item<int64_t>()));
  build_buckets(order);
  delivered_.assign(units_.size(), {});
}

}  // namespace angle::shard
