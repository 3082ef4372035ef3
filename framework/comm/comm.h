// Collectives over tensors, one interface for every backend (marian's communicator pattern):
//   single  one process (the default without mpirun),
//   mpi     CPU tensors over MPI (fp32, fp64, bf16, int32, int64),
//   nccl    CUDA tensors over NCCL, its unique id sent with MPI_Bcast (CUDA builds only).
// Every collective is recorded (sequence number, op, shape, dtype) in a ring buffer; one that
// waits longer than the timeout aborts all ranks with that record, so a dead or stuck rank never
// leaves the others hanging.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace angle::comm {

// Rows gathered by all_gather_rows up to this many bytes in all: NCCL sends them as an all-reduce
// of the zero-filled whole (its tree has log(N) latency where its all-gather's ring has N - 1).
constexpr uint64_t kSmallRowsBytes = 256 << 10;

struct CollectiveRecord {
  uint64_t sequence = 0;
  std::string op, shape, dtype;
};

// A collective in flight (issued asynchronously). `test` lets it progress without blocking and
// says whether it is done; `wait` blocks (under the watchdog) until it is, then runs whatever the
// backend must do to deliver the result. Destroying an unwaited work waits for it.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() { return true; }
  virtual void wait() = 0;
};
using WorkPtr = std::unique_ptr<Work>;

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual std::string backend() const = 0;
  // Where tensors handed to this communicator must live (CPU for mpi/single, the rank's GPU for nccl).
  virtual at::Device device() const { return at::kCPU; }

  // In place, element-wise sum over ranks.
  void all_reduce_sum(at::Tensor& tensor);
  // Rows of every rank concatenated in rank order; ranks may contribute different row counts.
  // `counts`, when given, receives every rank's row count.
  at::Tensor all_gather_rows(const at::Tensor& local, std::vector<int64_t>* counts = nullptr);
  // Every rank's row count, for `rows` rows here (one all-gather of a count).
  std::vector<int64_t> row_counts(int64_t rows);
  // The same when every rank's row count is already known: one collective instead of two.
  at::Tensor all_gather_rows_known(const at::Tensor& local, const std::vector<int64_t>& counts);
  // `flat` (1-D, numel divisible by size()) summed over ranks; this rank's chunk is returned.
  at::Tensor reduce_scatter_sum(const at::Tensor& flat);
  // Every rank's `chunk` (equal sizes) concatenated into `flat_out` (1-D), in rank order; a chunk
  // that is this rank's slot of `flat_out` is gathered in place.
  void all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out);
  // Asynchronous forms: the tensors must stay untouched until the work is waited for.
  WorkPtr all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out);
  // `out` (numel = flat.numel() / size(), same dtype) receives this rank's summed chunk.
  WorkPtr reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out);
  // `flat` (1-D) holds a piece for every rank, in rank order, `counts[r]` elements for rank r;
  // `out` (counts[rank()] elements, same dtype) receives this rank's piece summed over ranks. One
  // collective (MPI_Ireduce_scatter; NCCL: one grouped call) where pieces may differ in size.
  WorkPtr reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out, const std::vector<int64_t>& counts);
  // In place, element-wise sum over ranks.
  WorkPtr all_reduce_sum_async(at::Tensor& tensor);
  void broadcast(at::Tensor& tensor, int root);
  void barrier();
  // Blocks the host, under the watchdog, until every collective issued and waited for has
  // completed. Backends that complete collectives on the host (mpi, single) are done already; on
  // a GPU, waits are device-side (comm/stream_work.h) and this is where the host catches up: call
  // it before reading a result on the host that depends on collectives (the clip norm).
  void synchronize();

  // Collective: the ranks that pass the same `color`, ordered by `key`, as a communicator of their
  // own (MPI_Comm_split, ncclCommSplit). It shares this one's watchdog timeout and aborts the
  // whole job, as this one does.
  std::unique_ptr<Comm> split(int color, int key);
  // The node this rank runs on, named by the lowest rank of the job on it, and how many ranks of
  // the job run there (ranks sharing memory: MPI_COMM_TYPE_SHARED).
  virtual int node() const { return 0; }
  virtual int node_size() const { return size(); }

  // Ends every rank of the job at once (MPI_Abort; NCCL's communicator aborted first).
  [[noreturn]] void abort_job(int code) const;

  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }
  // The last collectives (oldest first), for diagnostics.
  std::vector<CollectiveRecord> history() const;
  // Wall and process CPU seconds this rank spent blocked on collectives (waiting, not overlapped
  // with compute), the payload bytes this rank contributed and the collectives it called, since
  // the last call; reset to 0. Those of communicators split from this one are included.
  struct WaitTime {
    double wall_s = 0, cpu_s = 0;
  };
  WaitTime take_wait();
  uint64_t take_bytes();
  uint64_t take_calls();

 protected:
  friend class HostStagedComm;  // runs another backend's raw operations on host copies
  // Backends implement the raw operations; `wait` is called with the in-flight record so that
  // a timeout can name it.
  virtual void do_all_reduce_sum(at::Tensor& tensor) = 0;
  virtual at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& counts) = 0;
  virtual at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) = 0;
  virtual void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) = 0;
  virtual void do_broadcast(at::Tensor& tensor, int root) = 0;
  virtual void do_barrier() = 0;
  virtual void do_synchronize() {}
  // Backends without a native asynchronous form run the blocking one and return a done work.
  virtual WorkPtr do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out);
  virtual WorkPtr do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out);
  virtual WorkPtr do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out,
                                                 const std::vector<int64_t>& counts) = 0;
  virtual WorkPtr do_all_reduce_sum_async(at::Tensor& tensor) = 0;
  virtual std::unique_ptr<Comm> do_split(int color, int key) = 0;
  static WorkPtr completed();  // a work that is already done

  const CollectiveRecord& begin(const char* op, const at::Tensor& tensor);
  const CollectiveRecord* in_flight_ = nullptr;  // the collective being waited for
  // Prints the stuck collective and the history, then aborts every rank.
  [[noreturn]] void timed_out(const CollectiveRecord& record) const;
  virtual void abort_all(int code) const = 0;

 private:
  double timeout_s_ = 300.0;
  WaitTime wait_;
  uint64_t bytes_ = 0;
  uint64_t sequence_ = 0, calls_ = 0;
  Comm* totals_ = this;  // where the counters above go: a split communicator adds to its parent's
  std::array<CollectiveRecord, 16> ring_;
};

struct PlacementRequest;  // comm/placement.h
// The backend comm/placement.h chooses for `request`, on the device it chooses (nccl: the rank's
// GPU; mpi with host staging: the device the tensors live on). MPI is initialised on first use and
// finalised at exit.
std::unique_ptr<Comm> make_comm(const PlacementRequest& request);
// backend "auto", "single", "mpi" (CPU tensors) or "nccl" (CUDA tensors on the rank's GPU).
std::unique_ptr<Comm> make_comm(const std::string& backend);
// True when this process was started by mpirun/mpiexec/srun (environment variables).
bool launched_by_mpi();

}  // namespace angle::comm
