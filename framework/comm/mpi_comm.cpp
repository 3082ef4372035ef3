#include "comm/mpi_comm.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace angle::comm {
namespace {

MPI_Datatype mpi_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kBFloat16: return MPI_UINT16_T;  // moved as words; summed with the bf16 operator
    default: ANGLE_FAIL("MPI backend: unsupported dtype ", type, " (fp32, fp64, bf16, int32, int64)");
  }
}

at::Tensor wire(const at::Tensor& t) {
  ANGLE_CHECK(t.device().is_cpu(), "MPI backend needs CPU tensors (use the nccl backend for CUDA)");
  return t.contiguous();
}

extern "C" void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = c10::BFloat16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

// A non-blocking MPI collective: the buffers it uses stay alive until it is waited for, then
// `finish` delivers the result (e.g. copies it into a non-contiguous destination).
class MpiWork : public Work {
 public:
  MpiWork(MpiComm& comm, const CollectiveRecord& record, std::vector<at::Tensor> keep, std::function<void()> finish)
      : comm_(comm), record_(record), keep_(std::move(keep)), finish_(std::move(finish)) {
    comm_.work_started();
  }
  ~MpiWork() override {
    if (!done_) comm_.work_finished();
  }
  MPI_Request request = MPI_REQUEST_NULL;
  bool test() override {
    if (!done_ && comm_.test(request)) complete();
    return done_;
  }
  void wait() override {
    if (done_) return;
    comm_.wait(request, record_);
    complete();
  }

 private:
  void complete() {
    done_ = true;
    comm_.work_finished();
    if (finish_) finish_();
    keep_.clear();
  }
  MpiComm& comm_;
  CollectiveRecord record_;
  std::vector<at::Tensor> keep_;
  std::function<void()> finish_;
  bool done_ = false;
};

}  // namespace

struct MpiProcess {
  bool initialized_here = false;
  MPI_Op bf16_op = MPI_OP_NULL;
  bool serialized = false;  // MPI allows calls from more than one thread (one at a time)
  int progress_interval_us = 100;
  std::mutex mutex;
  std::atomic<int> outstanding{0};
  std::atomic<bool> stop{false};
  std::condition_variable wake;
  std::mutex wake_mutex;
  std::thread progress;

  MpiProcess() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      initialized_here = true;
    }
    int level = 0;
    MPI_Query_thread(&level);
    serialized = level >= MPI_THREAD_SERIALIZED;
    if (const char* us = std::getenv("ANGLE_MPI_PROGRESS_US")) progress_interval_us = std::atoi(us);
    if (progress_interval_us <= 0) serialized = false;  // 0: no progress thread
    MPI_Op_create(&bf16_sum, 1, &bf16_op);
  }
  ~MpiProcess() {
    if (progress.joinable()) {
      stop = true;
      wake.notify_all();
      progress.join();
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && bf16_op != MPI_OP_NULL) MPI_Op_free(&bf16_op);
    if (initialized_here && !finalized) MPI_Finalize();
  }
  void started() {
    ++outstanding;
    if (serialized && !progress.joinable()) progress = std::thread([this] { loop(); });
    wake.notify_all();
  }
  void loop() {
    while (!stop) {
      if (outstanding == 0) {
        std::unique_lock<std::mutex> lock(wake_mutex);
        wake.wait_for(lock, std::chrono::milliseconds(5));
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        int flag = 0;  // MPI_Iprobe runs the progress engine (of every communicator; matches nothing collectives use)
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(progress_interval_us));
    }
  }
};

MpiComm::MpiComm() : process_(std::make_shared<MpiProcess>()), comm_(MPI_COMM_WORLD) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  find_node();
}

MpiComm::MpiComm(std::shared_ptr<MpiProcess> process, MPI_Comm comm, const MpiComm& parent)
    : process_(std::move(process)), comm_(comm), local_rank_(parent.local_rank_), node_(parent.node_),
      node_size_(parent.node_size_) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

// The ranks that share this one's memory: its local rank, their number, the lowest rank among them.
void MpiComm::find_node() {
  MPI_Comm node;
  MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &node_size_);
  MPI_Allreduce(&rank_, &node_, 1, MPI_INT, MPI_MIN, node);
  MPI_Comm_free(&node);
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_WORLD && !finalized) MPI_Comm_free(&comm_);
}

std::unique_ptr<Comm> MpiComm::do_split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  {
    auto held = lock();
    MPI_Comm_split(comm_, color, key, &sub);
  }
  return std::unique_ptr<Comm>(new MpiComm(process_, sub, *this));
}

std::unique_lock<std::mutex> MpiComm::lock() const { return std::unique_lock<std::mutex>(process_->mutex); }
MPI_Op MpiComm::sum_of(at::ScalarType type) const { return type == at::kBFloat16 ? process_->bf16_op : MPI_SUM; }
void MpiComm::work_started() { process_->started(); }
void MpiComm::work_finished() { --process_->outstanding; }

bool MpiComm::test(MPI_Request& request) {
  auto held = lock();
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  return done != 0;
}

void MpiComm::wait(MPI_Request& request, const CollectiveRecord& record) {
  const double start = now_seconds();
  for (long polls = 0;; ++polls) {
    if (test(request)) return;
    if (polls > 1000) {  // after a short spin, poll gently
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (now_seconds() - start > timeout()) timed_out(record);
    }
  }
}

void MpiComm::abort_all(int code) const { MPI_Abort(MPI_COMM_WORLD, code); }

void MpiComm::do_all_reduce_sum(at::Tensor& tensor) {
  at::Tensor buffer = wire(tensor);
  MPI_Request request;
  auto issue_lock = lock();
  MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()),
                 sum_of(buffer.scalar_type()), comm_, &request);
  issue_lock.unlock();
  wait(request);
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

at::Tensor MpiComm::do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& rows) {
  at::Tensor buffer = wire(local);
  int64_t row = 1;  // elements per row (known even when this rank sends no rows)
  for (int64_t d = 1; d < buffer.dim(); ++d) row *= buffer.size(d);
  std::vector<int> counts(size_), displacements(size_);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    counts[r] = static_cast<int>(rows[r] * row);
    displacements[r] = static_cast<int>(total * row);
    total += rows[r];
  }
  std::vector<int64_t> shape = buffer.sizes().vec();
  if (shape.empty()) shape.push_back(1);  // (not `= {1}`: GCC 12 warns falsely on that assignment)
  shape[0] = total;
  at::Tensor out = at::empty(shape, buffer.options());
  MPI_Request request;
  auto issue_lock = lock();
  MPI_Iallgatherv(buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()), out.data_ptr(),
                  counts.data(), displacements.data(), mpi_type(buffer.scalar_type()), comm_, &request);
  issue_lock.unlock();
  wait(request);
  return out;
}

at::Tensor MpiComm::do_reduce_scatter_sum(const at::Tensor& flat) {
  at::Tensor out = at::empty({flat.numel() / size_}, flat.options());
  do_reduce_scatter_sum_async(flat, out)->wait();
  return out;
}

void MpiComm::do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) {
  do_all_gather_into_async(chunk, flat_out)->wait();
}

WorkPtr MpiComm::do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) {
  at::Tensor send = wire(chunk), receive = flat_out.is_contiguous() ? flat_out : flat_out.contiguous();
  std::function<void()> finish;
  if (!receive.is_same(flat_out)) finish = [receive, flat_out]() mutable { flat_out.copy_(receive.view(flat_out.sizes())); };
  auto work = std::make_unique<MpiWork>(*this, *in_flight_, std::vector<at::Tensor>{send, receive}, std::move(finish));
  // A chunk that already sits in this rank's slot of the output is gathered in place.
  const bool in_place = static_cast<const char*>(send.data_ptr()) ==
                        static_cast<const char*>(receive.data_ptr()) + rank_ * send.nbytes();
  auto issue_lock = lock();
  MPI_Iallgather(in_place ? MPI_IN_PLACE : send.data_ptr(), static_cast<int>(send.numel()), mpi_type(send.scalar_type()),
                 receive.data_ptr(), static_cast<int>(send.numel()), mpi_type(send.scalar_type()), comm_,
                 &work->request);
  issue_lock.unlock();
  return work;
}

WorkPtr MpiComm::do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) {
  at::Tensor send = wire(flat), receive = out.is_contiguous() ? out : at::empty_like(out, at::MemoryFormat::Contiguous);
  std::function<void()> finish;
  if (!receive.is_same(out)) finish = [receive, out]() mutable { out.copy_(receive); };
  auto work = std::make_unique<MpiWork>(*this, *in_flight_, std::vector<at::Tensor>{send, receive}, std::move(finish));
  auto issue_lock = lock();
  MPI_Ireduce_scatter_block(send.data_ptr(), receive.data_ptr(), static_cast<int>(receive.numel()),
                            mpi_type(send.scalar_type()), sum_of(send.scalar_type()),
                            comm_, &work->request);
  issue_lock.unlock();
  return work;
}

WorkPtr MpiComm::do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out,
                                                const std::vector<int64_t>& counts) {
  at::Tensor send = wire(flat);
  std::vector<int> pieces(counts.begin(), counts.end());
  auto work = std::make_unique<MpiWork>(*this, *in_flight_, std::vector<at::Tensor>{send, out}, nullptr);
  auto issue_lock = lock();
  MPI_Ireduce_scatter(send.data_ptr(), out.data_ptr(), pieces.data(), mpi_type(send.scalar_type()),
                      sum_of(send.scalar_type()), comm_, &work->request);
  issue_lock.unlock();
  return work;
}

WorkPtr MpiComm::do_all_reduce_sum_async(at::Tensor& tensor) {
  at::Tensor buffer = wire(tensor);
  auto work = std::make_unique<MpiWork>(*this, *in_flight_, std::vector<at::Tensor>{buffer}, nullptr);
  auto issue_lock = lock();
  MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()),
                 sum_of(buffer.scalar_type()), comm_, &work->request);
  issue_lock.unlock();
  return work;
}

void MpiComm::do_broadcast(at::Tensor& tensor, int root) {
  at::Tensor buffer = wire(tensor);
  MPI_Request request;
  auto issue_lock = lock();
  MPI_Ibcast(buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()), root, comm_,
             &request);
  issue_lock.unlock();
  wait(request);
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

void MpiComm::do_barrier() {
  MPI_Request request;
  auto issue_lock = lock();
  MPI_Ibarrier(comm_, &request);
  issue_lock.unlock();
  wait(request);
}

}  // namespace angle::comm
