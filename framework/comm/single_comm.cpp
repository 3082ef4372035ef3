// The single-process backend and the backend factory.
#include <ATen/ATen.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdio>
#include <cstdlib>

#include "comm/comm.h"
#include "comm/host_staged_comm.h"
#include "comm/mpi_comm.h"
#include "comm/placement.h"
#include "core/error.h"

namespace angle::comm {

// nccl_comm.cpp (CUDA builds) or nccl_unavailable.cpp
std::unique_ptr<Comm> make_nccl_comm(const PlacementRequest& request);
bool nccl_built();

namespace {

class SingleComm : public Comm {
 public:
  explicit SingleComm(at::Device device = at::kCPU) : device_(device) {}
  at::Device device() const override { return device_; }
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
  std::unique_ptr<Comm> do_split(int, int) override { return std::make_unique<SingleComm>(device_); }
  void do_broadcast(at::Tensor&, int) override {}
  void do_barrier() override {}
  void abort_all(int code) const override { std::_Exit(code); }

 private:
  at::Device device_;
};

int visible_gpus() { return at::detail::getCUDAHooks().getNumGPUs(); }

// Allocations and kernels without an explicit device go to the rank's GPU.
at::Device make_current(at::Device gpu) {
  c10::impl::getDeviceGuardImpl(at::kCUDA)->setDevice(gpu);
  return gpu;
}
at::Device gpu(int index) { return make_current(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index))); }

}  // namespace

std::unique_ptr<Comm> make_comm(const PlacementRequest& request) {
  const std::string backend = choose_backend(request, launched_by_mpi(), nccl_built());
  if (backend == "nccl") return make_nccl_comm(request);
  if (backend == "single")
    return std::make_unique<SingleComm>(request.cuda ? gpu(choose_gpu("single", request, 0, 1, visible_gpus()))
                                                     : at::Device(at::kCPU));
  auto mpi = std::make_unique<MpiComm>();
  if (!request.cuda) return mpi;
  try {  // a rank that sees other GPUs than its peers must not leave them waiting
    const at::Device device = gpu(choose_gpu("mpi", request, mpi->local_rank(), mpi->node_size(), visible_gpus()));
    return make_host_staged(std::move(mpi), device);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "angle: error: rank %d: %s\n", mpi->rank(), message_of(e).c_str());
    std::fflush(stderr);
    mpi->abort_job(1);
  }
}

std::unique_ptr<Comm> make_comm(const std::string& backend) {
  PlacementRequest request;
  request.backend = backend;
  request.cuda = backend == "nccl";
  return make_comm(request);
}

}  // namespace angle::comm
