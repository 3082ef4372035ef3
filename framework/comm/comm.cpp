#include "comm/comm.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace angle::comm {

namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

const CollectiveRecord& Comm::begin(const char* op, const at::Tensor& tensor) {
  CollectiveRecord& r = ring_[sequence_ % ring_.size()];
  r = {sequence_++, op, tensor.defined() ? shape_of(tensor) : "[]",
       tensor.defined() ? std::string(c10::toString(tensor.scalar_type())) : "-"};
  in_flight_ = &r;
  ++totals_->calls_;
  return r;
}

std::vector<CollectiveRecord> Comm::history() const {
  std::vector<CollectiveRecord> out;
  for (uint64_t s = sequence_ > ring_.size() ? sequence_ - ring_.size() : 0; s < sequence_; ++s)
    out.push_back(ring_[s % ring_.size()]);
  return out;
}

void Comm::timed_out(const CollectiveRecord& r) const {
  std::fprintf(stderr,
               "angle: error: rank %d: collective #%llu %s %s %s did not complete within %.0f s (watchdog); a rank "
               "died or is stuck; aborting all ranks\n",
               rank(), static_cast<unsigned long long>(r.sequence), r.op.c_str(), r.shape.c_str(), r.dtype.c_str(),
               timeout_s_);
  for (const auto& h : history())
    std::fprintf(stderr, "  rank %d history: #%llu %s %s %s\n", rank(), static_cast<unsigned long long>(h.sequence),
                 h.op.c_str(), h.shape.c_str(), h.dtype.c_str());
  std::fflush(stderr);
  abort_job(3);
}

void Comm::abort_job(int code) const {
  abort_all(code);
  std::_Exit(code);
}

namespace {
class DoneWork : public Work {
 public:
  void wait() override {}
};
}  // namespace

WorkPtr Comm::completed() { return std::make_unique<DoneWork>(); }

namespace {
// Adds the wall and CPU time from its construction to its destruction to `total`.
class WaitClock {
 public:
  explicit WaitClock(Comm::WaitTime& total) : total_(total), wall_(now_seconds()), cpu_(process_cpu_seconds()) {}
  ~WaitClock() {
    total_.wall_s += now_seconds() - wall_;
    total_.cpu_s += process_cpu_seconds() - cpu_;
  }

 private:
  Comm::WaitTime& total_;
  double wall_, cpu_;
};
}  // namespace

Comm::WaitTime Comm::take_wait() { return std::exchange(wait_, WaitTime{}); }
uint64_t Comm::take_bytes() { return std::exchange(bytes_, 0); }
uint64_t Comm::take_calls() { return std::exchange(calls_, 0); }

void Comm::all_reduce_sum(at::Tensor& tensor) {
  begin("all_reduce", tensor);
  totals_->bytes_ += tensor.nbytes();
  WaitClock clock(totals_->wait_);
  do_all_reduce_sum(tensor);
}

std::vector<int64_t> Comm::row_counts(int64_t rows) {
  WaitClock clock(totals_->wait_);
  at::Tensor mine = at::full({1}, rows, at::kLong).to(device());
  begin("all_gather_counts", mine);
  totals_->bytes_ += mine.nbytes();
  at::Tensor all = do_all_gather_rows(mine, std::vector<int64_t>(size(), 1)).cpu().contiguous();
  return {all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + size()};
}

at::Tensor Comm::all_gather_rows(const at::Tensor& local, std::vector<int64_t>* counts) {
  const std::vector<int64_t> all = row_counts(local.dim() > 0 ? local.size(0) : 1);
  if (counts) *counts = all;
  return all_gather_rows_known(local, all);
}

at::Tensor Comm::all_gather_rows_known(const at::Tensor& local, const std::vector<int64_t>& counts) {
  ANGLE_CHECK(static_cast<int>(counts.size()) == size() && counts[rank()] == (local.dim() > 0 ? local.size(0) : 1),
              "all_gather_rows: the known row counts disagree with this rank's ", local.dim() > 0 ? local.size(0) : 1,
              " rows");
  begin("all_gather_rows", local);
  totals_->bytes_ += local.nbytes();
  WaitClock clock(totals_->wait_);
  return do_all_gather_rows(local, counts);
}

at::Tensor Comm::reduce_scatter_sum(const at::Tensor& flat) {
  at::Tensor out = at::empty({flat.numel() / size()}, flat.options());
  reduce_scatter_sum_async(flat, out)->wait();
  return out;
}
void Comm::all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) { all_gather_into_async(chunk, flat_out)->wait(); }

// The watchdog and the exposed-time clock of asynchronous work: its wait is timed here.
namespace {
class TimedWork : public Work {
 public:
  TimedWork(WorkPtr inner, Comm::WaitTime& total) : inner_(std::move(inner)), total_(total) {}
  ~TimedWork() override {
    // Unwinding from an error, the job is about to be aborted (train's handler): waiting could
    // block on a peer that will never come, so the work and its buffers are left alive instead.
    if (std::uncaught_exceptions() > 0 && !waited_) {
      (void)inner_.release();
      return;
    }
    wait();
  }
  bool test() override { return done_ || (done_ = inner_->test()); }
  void wait() override {
    if (waited_) return;
    {
      WaitClock clock(total_);
      inner_->wait();
    }
    waited_ = done_ = true;
  }

 private:
  WorkPtr inner_;
  Comm::WaitTime& total_;
  bool done_ = false, waited_ = false;
};
}  // namespace

WorkPtr Comm::all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) {
  ANGLE_CHECK(flat_out.numel() == chunk.numel() * size() && flat_out.dtype() == chunk.dtype(), "all_gather: output of ",
              flat_out.numel(), " ", flat_out.dtype(), " elements for ", size(), " chunks of ", chunk.numel(), " ",
              chunk.dtype());
  begin("all_gather", chunk);
  totals_->bytes_ += chunk.nbytes();
  return std::make_unique<TimedWork>(do_all_gather_into_async(chunk, flat_out), totals_->wait_);
}
WorkPtr Comm::reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) {
  ANGLE_CHECK(flat.dim() == 1 && flat.numel() % size() == 0, "reduce_scatter: numel ", flat.numel(),
              " is not divisible by ", size(), " ranks");
  ANGLE_CHECK(out.numel() == flat.numel() / size() && out.dtype() == flat.dtype(), "reduce_scatter: output of ",
              out.numel(), " ", out.dtype(), " elements for ", flat.numel(), " ", flat.dtype(), " over ", size(), " ranks");
  begin("reduce_scatter", flat);
  totals_->bytes_ += flat.nbytes();
  return std::make_unique<TimedWork>(do_reduce_scatter_sum_async(flat, out), totals_->wait_);
}
WorkPtr Comm::reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out, const std::vector<int64_t>& counts) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  ANGLE_CHECK(static_cast<int>(counts.size()) == size() && flat.dim() == 1 && flat.numel() == total &&
                  flat.is_contiguous(),
              "reduce_scatter: ", flat.numel(), " elements for pieces that sum to ", total, " over ", counts.size(),
              " ranks");
  ANGLE_CHECK(out.numel() == counts[rank()] && out.dtype() == flat.dtype() && out.is_contiguous(),
              "reduce_scatter: output of ", out.numel(), " ", out.dtype(), " elements for a piece of ", counts[rank()],
              " ", flat.dtype());
  begin("reduce_scatter", flat);
  totals_->bytes_ += flat.nbytes();
  return std::make_unique<TimedWork>(do_reduce_scatter_counts_async(flat, out, counts), totals_->wait_);
}
WorkPtr Comm::all_reduce_sum_async(at::Tensor& tensor) {
  ANGLE_CHECK(tensor.is_contiguous(), "all_reduce: needs a contiguous tensor");
  begin("all_reduce", tensor);
  totals_->bytes_ += tensor.nbytes();
  return std::make_unique<TimedWork>(do_all_reduce_sum_async(tensor), totals_->wait_);
}
std::unique_ptr<Comm> Comm::split(int color, int key) {
  begin("split", at::Tensor());
  std::unique_ptr<Comm> sub;
  {
    WaitClock clock(totals_->wait_);
    sub = do_split(color, key);
  }
  sub->set_timeout(timeout_s_);
  sub->totals_ = totals_;
  return sub;
}
WorkPtr Comm::do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) {
  do_all_gather_into(chunk, flat_out);
  return completed();
}
WorkPtr Comm::do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) {
  out.copy_(do_reduce_scatter_sum(flat));
  return completed();
}

void Comm::broadcast(at::Tensor& tensor, int root) {
  begin("broadcast", tensor);
  totals_->bytes_ += tensor.nbytes();
  WaitClock clock(totals_->wait_);
  do_broadcast(tensor, root);
}
void Comm::synchronize() {  // not a collective: neither recorded nor counted
  WaitClock clock(totals_->wait_);
  do_synchronize();
}
void Comm::barrier() {
  begin("barrier", at::Tensor());
  WaitClock clock(totals_->wait_);
  do_barrier();
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace angle::comm
