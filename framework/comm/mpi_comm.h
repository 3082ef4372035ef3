// MPI backend: CPU tensors, non-blocking collectives polled against the watchdog timeout.
// MPI moves a non-blocking collective forward only inside MPI calls; while asynchronous work is
// in flight a progress thread calls into MPI every 100 us (ANGLE_MPI_PROGRESS_US; 0: no thread),
// so that collectives overlap with compute instead of running when they are waited for
// (MPI_THREAD_SERIALIZED: every MPI call of this class holds one mutex).
// bf16 travels as 16-bit words (no conversion); its sums use a bf16 reduction operator
// (each partial sum rounded to bf16, as NCCL does). A communicator split from another
// (MPI_Comm_split) shares its mutex and progress thread: MPI_THREAD_SERIALIZED allows one MPI
// call at a time in the whole process, whichever communicator it is on.
#pragma once
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "comm/comm.h"

namespace angle::comm {

// What every communicator of the process shares: MPI itself (initialised by the first, finalised
// with the last), the mutex that serialises MPI calls, the progress thread, the bf16 operator.
struct MpiProcess;

class MpiComm : public Comm {
 public:
  MpiComm();  // MPI_COMM_WORLD
  ~MpiComm() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int node() const override { return node_; }
  int node_size() const override { return node_size_; }
  std::string backend() const override { return "mpi"; }
  // Polls `request` until done; past the timeout, reports `record` and aborts every rank.
  void wait(MPI_Request& request, const CollectiveRecord& record);
  void wait(MPI_Request& request) { wait(request, *in_flight_); }
  bool test(MPI_Request& request);
  // Asynchronous work in flight, for the progress thread.
  void work_started();
  void work_finished();
  MPI_Comm handle() const { return comm_; }

 protected:
  void do_all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& counts) override;
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override;
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override;
  WorkPtr do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) override;
  WorkPtr do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) override;
  WorkPtr do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out,
                                         const std::vector<int64_t>& counts) override;
  WorkPtr do_all_reduce_sum_async(at::Tensor& tensor) override;
  std::unique_ptr<Comm> do_split(int color, int key) override;
  void do_broadcast(at::Tensor& tensor, int root) override;
  void do_barrier() override;
  void abort_all(int code) const override;

 private:
  MpiComm(std::shared_ptr<MpiProcess> process, MPI_Comm comm, const MpiComm& parent);
  void find_node();
  std::shared_ptr<MpiProcess> process_;
  MPI_Comm comm_ = MPI_COMM_NULL;  // MPI_COMM_WORLD, or a split of it (freed with this object)
  int rank_ = 0, size_ = 1, local_rank_ = 0, node_ = 0, node_size_ = 1;
  MPI_Op sum_of(at::ScalarType type) const;
  std::unique_lock<std::mutex> lock() const;
};

}  // namespace angle::comm
