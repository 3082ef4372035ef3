// NCCL backend (CUDA builds): CUDA tensors, one GPU per rank chosen from the node-local rank, the
// NCCL unique id sent from rank 0 with MPI_Bcast. Operations run on the current CUDA stream and
// are polled (cudaStreamQuery + ncclCommGetAsyncError) against the watchdog timeout.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <thread>

#include "comm/mpi_comm.h"
#include "core/error.h"
#include "core/log.h"

namespace angle::comm {
namespace {

#define NCCL_CHECK(call)                                                                   \
  do {                                                                                     \
    ncclResult_t result_ = (call);                                                         \
    ANGLE_CHECK(result_ == ncclSuccess, "NCCL: ", #call, ": ", ncclGetErrorString(result_)); \
  } while (0)

ncclDataType_t nccl_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    default: ANGLE_FAIL("NCCL backend: unsupported dtype ", type);
  }
}

class NcclComm : public Comm {
 public:
  NcclComm() {
    const int devices = static_cast<int>(c10::cuda::device_count());
    ANGLE_CHECK(devices > 0, "nccl backend: no CUDA device visible to rank ", mpi_.rank());
    device_ = mpi_.local_rank() % devices;
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_));
    ncclUniqueId id;
    if (mpi_.rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    NCCL_CHECK(ncclCommInitRank(&comm_, mpi_.size(), id, mpi_.rank()));
  }
  ~NcclComm() override { ncclCommDestroy(comm_); }
  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  int local_rank() const override { return mpi_.local_rank(); }
  std::string backend() const override { return "nccl (cuda:" + std::to_string(device_) + ")"; }
  at::Device device() const override { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_)); }

 protected:
  cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream(); }

  void wait() {
    const double start = now_seconds();
    while (true) {
      cudaError_t status = cudaStreamQuery(stream());
      if (status == cudaSuccess) return;
      ANGLE_CHECK(status == cudaErrorNotReady, "CUDA: ", cudaGetErrorString(status));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      ANGLE_CHECK(async == ncclSuccess, "NCCL: asynchronous error: ", ncclGetErrorString(async));
      if (now_seconds() - start > timeout()) timed_out(*in_flight_);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  static void check_cuda(const at::Tensor& t) {
    ANGLE_CHECK(t.is_cuda() && t.is_contiguous(), "nccl backend needs contiguous CUDA tensors");
  }

  void do_all_reduce_sum(at::Tensor& t) override {
    check_cuda(t);
    NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), ncclSum, comm_, stream()));
    wait();
  }
  at::Tensor do_all_gather_rows(const at::Tensor& local) override {
    check_cuda(local);
    // Row counts first, then every rank's rows padded to the largest count.
    at::Tensor rows = at::full({1}, local.size(0), local.options().dtype(at::kLong));
    at::Tensor all_rows = at::empty({size()}, rows.options());
    NCCL_CHECK(ncclAllGather(rows.data_ptr(), all_rows.data_ptr(), 1, ncclInt64, comm_, stream()));
    wait();
    std::vector<int64_t> counts(all_rows.cpu().data_ptr<int64_t>(), all_rows.cpu().data_ptr<int64_t>() + size());
    const int64_t most = *std::max_element(counts.begin(), counts.end());
    std::vector<int64_t> padded_shape = local.sizes().vec();
    padded_shape[0] = most;
    at::Tensor padded = at::zeros(padded_shape, local.options());
    padded.narrow(0, 0, local.size(0)).copy_(local);
    padded_shape[0] = most * size();
    at::Tensor gathered = at::empty(padded_shape, local.options());
    NCCL_CHECK(ncclAllGather(padded.data_ptr(), gathered.data_ptr(), padded.numel(), nccl_type(local.scalar_type()),
                             comm_, stream()));
    wait();
    std::vector<at::Tensor> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(gathered.narrow(0, r * most, counts[r]));
    return at::cat(parts);
  }
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override {
    check_cuda(flat);
    at::Tensor out = at::empty({flat.numel() / size()}, flat.options());
    NCCL_CHECK(ncclReduceScatter(flat.data_ptr(), out.data_ptr(), out.numel(), nccl_type(flat.scalar_type()), ncclSum,
                                 comm_, stream()));
    wait();
    return out;
  }
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override {
    check_cuda(chunk);
    check_cuda(flat_out);
    NCCL_CHECK(ncclAllGather(chunk.data_ptr(), flat_out.data_ptr(), chunk.numel(), nccl_type(chunk.scalar_type()), comm_,
                             stream()));
    wait();
  }
  void do_broadcast(at::Tensor& t, int root) override {
    check_cuda(t);
    NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), root, comm_, stream()));
    wait();
  }
  void do_barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().device(at::kCUDA, device_));
    do_all_reduce_sum(one);
  }
  void abort_all(int code) const override {
    ncclCommAbort(comm_);
    MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  MpiComm mpi_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm() { return std::make_unique<NcclComm>(); }

}  // namespace angle::comm
