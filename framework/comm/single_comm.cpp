// The single-process backend and the backend factory.
#include <ATen/ATen.h>

#include <cstdlib>

#include "comm/comm.h"
#include "comm/mpi_comm.h"
#include "core/error.h"

namespace angle::comm {

std::unique_ptr<Comm> make_nccl_comm();  // nccl_comm.cpp (CUDA builds) or the stub below

namespace {

class SingleComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }

 protected:
  void do_all_reduce_sum(at::Tensor&) override {}
  at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>&) override { return local; }
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override { return flat; }
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override {
    if (chunk.data_ptr() != flat_out.data_ptr()) flat_out.copy_(chunk.view(flat_out.sizes()));
  }
  WorkPtr do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out, const std::vector<int64_t>&) override {
    if (!flat.is_same(out)) out.copy_(flat);
    return completed();
  }
  WorkPtr do_all_reduce_sum_async(at::Tensor&) override { return completed(); }
  std::unique_ptr<Comm> do_split(int, int) override { return std::make_unique<SingleComm>(); }
  void do_broadcast(at::Tensor&, int) override {}
  void do_barrier() override {}
  void abort_all(int code) const override { std::_Exit(code); }
};

}  // namespace

std::unique_ptr<Comm> make_comm(const std::string& backend) {
  if (backend == "single") return std::make_unique<SingleComm>();
  if (backend == "mpi") return std::make_unique<MpiComm>();
  if (backend == "nccl") return make_nccl_comm();
  ANGLE_CHECK(backend == "auto", "unknown communication backend '", backend, "' (auto, single, mpi, nccl)");
  return launched_by_mpi() ? std::unique_ptr<Comm>(std::make_unique<MpiComm>()) : std::make_unique<SingleComm>();
}

}  // namespace angle::comm
