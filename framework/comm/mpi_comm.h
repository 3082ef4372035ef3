// MPI backend: CPU tensors, non-blocking collectives polled against the watchdog timeout.
// bf16 travels as 16-bit words (no conversion); its sums use a bf16 reduction operator
// (each partial sum rounded to bf16, as NCCL does).
#pragma once
#include <mpi.h>

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
};

}  // namespace angle::comm
