// MPI backend: CPU tensors, non-blocking collectives polled against the watchdog timeout.
// MPI moves a non-blocking collective forward only inside MPI calls; while asynchronous work is
// in flight a progress thread calls into MPI every 100 us (ANGLE_MPI_PROGRESS_US; 0: no thread),
// so that collectives overlap with compute instead of running when they are waited for
// (MPI_THREAD_SERIALIZED: every MPI call of this class holds one mutex).
// bf16 travels as 16-bit words (no conversion); its sums use a bf16 reduction operator
// (each partial sum rounded to bf16, as NCCL does).
#pragma once
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "comm/comm.h"

namespace angle::comm {

class MpiComm : public Comm {
 public:
  MpiComm();
  ~MpiComm() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }
  // Polls `request` until done; past the timeout, reports `record` and aborts every rank.
  void wait(MPI_Request& request, const CollectiveRecord& record);
  void wait(MPI_Request& request) { wait(request, *in_flight_); }
  bool test(MPI_Request& request);
  // Asynchronous work in flight, for the progress thread.
  void work_started();
  void work_finished() { --outstanding_; }
  std::mutex& mpi_mutex() { return mutex_; }

 protected:
  void do_all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& counts) override;
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override;
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override;
  WorkPtr do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) override;
  WorkPtr do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) override;
  WorkPtr do_reduce_sum_async(const at::Tensor& send, at::Tensor& out, int root) override;
  void do_broadcast(at::Tensor& tensor, int root) override;
  void do_barrier() override;
  void abort_all(int code) const override;

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool initialized_here_ = false;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
  bool serialized_ = false;  // MPI allows calls from more than one thread (one at a time)
  int progress_interval_us_ = 100;
  std::mutex mutex_;
  std::atomic<int> outstanding_{0};
  std::atomic<bool> stop_{false};
  std::condition_variable wake_;
  std::mutex wake_mutex_;
  std::thread progress_;
  void progress_loop();
};

}  // namespace angle::comm
