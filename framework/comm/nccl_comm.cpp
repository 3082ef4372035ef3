// NCCL backend (CUDA builds): CUDA tensors, one GPU per rank chosen from the node-local rank, the
// NCCL unique id sent from rank 0 with MPI_Bcast. Operations run on a side stream and are polled
// (cudaEventQuery + ncclCommGetAsyncError) against the watchdog timeout.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
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

class NcclComm;

// A collective launched on the communicator's side stream (after the work already queued on the
// compute stream): `wait` polls its completion under the watchdog, then orders the compute
// stream after it. The tensors it uses stay referenced until then.
class NcclWork : public Work {
 public:
  NcclWork(NcclComm& comm, const CollectiveRecord& record, std::vector<at::Tensor> keep);
  ~NcclWork() override { cudaEventDestroy(done_); }
  void launched(cudaStream_t side) { cudaEventRecord(done_, side); }
  bool test() override { return waited_ || cudaEventQuery(done_) == cudaSuccess; }
  void wait() override;

 private:
  NcclComm& comm_;
  CollectiveRecord record_;
  std::vector<at::Tensor> keep_;
  cudaEvent_t done_ = nullptr;
  bool waited_ = false;
};

// Every collective, blocking or not, runs on one side stream, so that NCCL sees them in the
// order they were issued (collectives of one communicator on two streams can deadlock).
class NcclComm : public Comm {
 public:
  NcclComm() : mpi_(std::make_shared<MpiComm>()) {
    try {
      const int devices = static_cast<int>(c10::cuda::device_count());
      ANGLE_CHECK(devices > 0, "nccl backend: no CUDA device visible to rank ", mpi_->rank());
      device_ = mpi_->local_rank() % devices;
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_));
      ncclUniqueId id;
      if (mpi_->rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
      MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
      NCCL_CHECK(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()));
      rank_ = mpi_->rank(), size_ = mpi_->size();
      cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking);
    } catch (const std::exception& e) {  // a rank that cannot set up NCCL ends the job at once
      std::fprintf(stderr, "angle: error: rank %d: %s\n", mpi_->rank(), message_of(e).c_str());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  // A split of `parent`: its own NCCL communicator and side stream (collectives of two
  // communicators on one stream could wait for each other across ranks).
  NcclComm(const NcclComm& parent, ncclComm_t comm) : mpi_(parent.mpi_), device_(parent.device_), comm_(comm) {
    NCCL_CHECK(ncclCommUserRank(comm_, &rank_));
    NCCL_CHECK(ncclCommCount(comm_, &size_));
    cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking);
  }
  ~NcclComm() override {
    cudaStreamDestroy(side_);
    ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return mpi_->local_rank(); }
  int node() const override { return mpi_->node(); }
  int node_size() const override { return mpi_->node_size(); }
  std::string backend() const override { return "nccl (cuda:" + std::to_string(device_) + ")"; }
  at::Device device() const override { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_)); }

  cudaStream_t compute_stream() const {
    return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
  }
  void check_async_error() const {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    ANGLE_CHECK(async == ncclSuccess, "NCCL: asynchronous error: ", ncclGetErrorString(async));
  }
  using Comm::timed_out;

 protected:
  static void check_cuda(const at::Tensor& t) {
    ANGLE_CHECK(t.is_cuda() && t.is_contiguous(), "nccl backend needs contiguous CUDA tensors");
  }
  // Orders the side stream after the compute stream, runs `launch(side stream)`, returns its work.
  template <typename Launch>
  std::unique_ptr<NcclWork> run(std::vector<at::Tensor> keep, Launch&& launch) {
    for (const at::Tensor& t : keep)
      if (t.defined()) check_cuda(t);
    cudaEvent_t ready;
    cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
    cudaEventRecord(ready, compute_stream());
    cudaStreamWaitEvent(side_, ready, 0);
    cudaEventDestroy(ready);
    auto work = std::make_unique<NcclWork>(*this, *in_flight_, std::move(keep));
    launch(side_);
    work->launched(side_);
    return work;
  }

  void do_all_reduce_sum(at::Tensor& t) override {
    run({t}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), ncclSum, comm_, s));
    })->wait();
  }
  at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& counts) override {
    at::Tensor rows = local.dim() == 0 ? local.reshape({1}) : local.contiguous();
    int64_t total = 0, before = 0;
    for (int r = 0; r < size(); ++r) total += counts[r], before += r < rank() ? counts[r] : 0;
    std::vector<int64_t> whole = rows.sizes().vec();
    whole[0] = total;
    if (static_cast<uint64_t>(rows.numel() / std::max<int64_t>(1, rows.size(0)) * total * rows.element_size()) <=
        kSmallRowsBytes) {  // few bytes: the sum of every rank's rows in its place (a tree, log N latency)
      at::Tensor sum = at::zeros(whole, rows.options());
      if (rows.size(0) > 0) sum.narrow(0, before, rows.size(0)).copy_(rows);
      run({sum}, [&](cudaStream_t s) {
        NCCL_CHECK(ncclAllReduce(sum.data_ptr(), sum.data_ptr(), sum.numel(), nccl_type(sum.scalar_type()), ncclSum,
                                 comm_, s));
      })->wait();
      return sum;
    }
    // Every rank's rows padded to the largest count (NCCL's all-gather takes equal sizes).
    const int64_t most = *std::max_element(counts.begin(), counts.end());
    std::vector<int64_t> shape = rows.sizes().vec();
    shape[0] = most;
    at::Tensor padded = at::zeros(shape, rows.options());
    if (rows.size(0) > 0) padded.narrow(0, 0, rows.size(0)).copy_(rows);
    shape[0] = most * size();
    at::Tensor gathered = at::empty(shape, rows.options());
    run({padded, gathered}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllGather(padded.data_ptr(), gathered.data_ptr(), padded.numel(), nccl_type(rows.scalar_type()),
                               comm_, s));
    })->wait();
    std::vector<at::Tensor> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(gathered.narrow(0, r * most, counts[r]));
    return at::cat(parts);
  }
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override {
    at::Tensor out = at::empty({flat.numel() / size()}, flat.options());
    do_reduce_scatter_sum_async(flat, out)->wait();
    return out;
  }
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override {
    do_all_gather_into_async(chunk, flat_out)->wait();
  }
  WorkPtr do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) override {
    return run({chunk, flat_out}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllGather(chunk.data_ptr(), flat_out.data_ptr(), chunk.numel(), nccl_type(chunk.scalar_type()),
                               comm_, s));
    });
  }
  WorkPtr do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) override {
    return run({flat, out}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclReduceScatter(flat.data_ptr(), out.data_ptr(), out.numel(), nccl_type(flat.scalar_type()), ncclSum,
                                   comm_, s));
    });
  }
  // Equal pieces: one reduce-scatter; else one reduce to each rank, grouped into one NCCL call.
  WorkPtr do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out,
                                         const std::vector<int64_t>& counts) override {
    const bool equal = std::all_of(counts.begin(), counts.end(), [&](int64_t c) { return c == counts[0]; });
    return run({flat, out}, [&](cudaStream_t s) {
      const ncclDataType_t type = nccl_type(flat.scalar_type());
      if (equal) {
        NCCL_CHECK(ncclReduceScatter(flat.data_ptr(), out.data_ptr(), out.numel(), type, ncclSum, comm_, s));
        return;
      }
      NCCL_CHECK(ncclGroupStart());
      int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        if (counts[r] > 0) {
          void* piece = static_cast<char*>(flat.data_ptr()) + offset * flat.element_size();
          NCCL_CHECK(ncclReduce(piece, r == rank() ? out.data_ptr() : piece, counts[r], type, ncclSum, r, comm_, s));
        }
        offset += counts[r];
      }
      NCCL_CHECK(ncclGroupEnd());
    });
  }
  WorkPtr do_all_reduce_sum_async(at::Tensor& t) override {
    return run({t}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), ncclSum, comm_, s));
    });
  }
  std::unique_ptr<Comm> do_split(int color, int key) override {
    ncclComm_t sub = nullptr;
    NCCL_CHECK(ncclCommSplit(comm_, color, key, &sub, nullptr));
    return std::make_unique<NcclComm>(*this, sub);
  }
  void do_broadcast(at::Tensor& t, int root) override {
    run({t}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), root, comm_, s));
    })->wait();
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
  std::shared_ptr<MpiComm> mpi_;  // the job's MPI world: node-local ranks, the unique id, aborts
  int rank_ = 0, size_ = 1, device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t side_ = nullptr;
};

NcclWork::NcclWork(NcclComm& comm, const CollectiveRecord& record, std::vector<at::Tensor> keep)
    : comm_(comm), record_(record), keep_(std::move(keep)) {
  cudaEventCreateWithFlags(&done_, cudaEventDisableTiming);
}

void NcclWork::wait() {
  if (waited_) return;
  const double start = now_seconds();
  while (true) {
    cudaError_t status = cudaEventQuery(done_);
    if (status == cudaSuccess) break;
    ANGLE_CHECK(status == cudaErrorNotReady, "CUDA: ", cudaGetErrorString(status));
    comm_.check_async_error();
    if (now_seconds() - start > comm_.timeout()) comm_.timed_out(record_);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  cudaStreamWaitEvent(comm_.compute_stream(), done_, 0);
  keep_.clear();
  waited_ = true;
}

}  // namespace

std::unique_ptr<Comm> make_nccl_comm() { return std::make_unique<NcclComm>(); }

}  // namespace angle::comm
