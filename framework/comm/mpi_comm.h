// MPI backend: CPU tensors, non-blocking collectives polled against the watchdog timeout.
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
  // Polls `request` until done; past the timeout, reports the in-flight collective and aborts.
  void wait(MPI_Request& request);

 protected:
  void do_all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor do_all_gather_rows(const at::Tensor& local) override;
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override;
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override;
  void do_broadcast(at::Tensor& tensor, int root) override;
  void do_barrier() override;
  void abort_all(int code) const override;

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool initialized_here_ = false;
};

}  // namespace angle::comm
