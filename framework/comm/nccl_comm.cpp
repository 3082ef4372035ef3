// NCCL backend (CUDA builds): CUDA tensors, one GPU per rank (comm/placement.h), the NCCL unique
// id sent from rank 0 with MPI_Bcast. Operations run on a side stream; waiting for one makes the
// compute stream wait for its event (comm/stream_work.h); the host polls (cudaEventQuery +
// ncclCommGetAsyncError, under the watchdog) only for blocking collectives and `synchronize`.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include "comm/cuda_events.h"
#include "comm/mpi_comm.h"
#include "comm/placement.h"
#include "comm/stream_work.h"
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

// CUDA events on the communicator's side stream and the rank's compute stream; `done` also
// reports NCCL's asynchronous errors (a peer that failed).
class CudaStreams : public DeviceStreams {
 public:
  CudaStreams(cudaStream_t side, int device, ncclComm_t comm) : side_(side), device_(device), comm_(comm) {}
  // (Events are created on the current device and must be the streams': the rank's GPU.)
  uint64_t record_on_comm_stream() override {
    const c10::cuda::CUDAGuard on_this_gpu(static_cast<c10::DeviceIndex>(device_));
    return events_.record(side_);
  }
  uint64_t record_on_compute_stream() override {
    const c10::cuda::CUDAGuard on_this_gpu(static_cast<c10::DeviceIndex>(device_));
    return events_.record(compute());
  }
  void compute_waits_for(uint64_t id) override { ANGLE_CUDA_CHECK(cudaStreamWaitEvent(compute(), events_.at(id), 0)); }
  bool done(uint64_t id) override {
    const cudaError_t status = cudaEventQuery(events_.at(id));
    if (status == cudaSuccess) return true;
    ANGLE_CHECK(status == cudaErrorNotReady, "CUDA: ", cudaGetErrorString(status));
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    ANGLE_CHECK(async == ncclSuccess, "NCCL: asynchronous error: ", ncclGetErrorString(async));
    return false;
  }
  void release(uint64_t id) override { events_.release(id); }
  cudaEvent_t event(uint64_t id) const { return events_.at(id); }

 private:
  cudaStream_t compute() const { return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream(); }
  cudaStream_t side_;
  int device_;
  ncclComm_t comm_;
  CudaEvents events_{cudaEventDisableTiming};
};

std::string uuid_of(int device) {
  cudaDeviceProp prop{};
  ANGLE_CHECK(cudaGetDeviceProperties(&prop, device) == cudaSuccess, "CUDA: cannot read the properties of cuda:", device);
  std::string hex;
  char byte[3];
  for (int i = 0; i < 16; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", static_cast<unsigned char>(prop.uuid.bytes[i]));
    hex += byte;
  }
  return "GPU-" + hex;
}

// Every collective, blocking or not, runs on one side stream, so that NCCL sees them in the
// order they were issued (collectives of one communicator on two streams can deadlock).
class NcclComm : public Comm {
 public:
  explicit NcclComm(const PlacementRequest& request) : mpi_(std::make_shared<MpiComm>()) {
    try {
      device_ = choose_gpu("nccl", request, mpi_->local_rank(), mpi_->node_size(),
                           static_cast<int>(c10::cuda::device_count()));
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_));
      check_one_gpu_per_rank();
      ncclUniqueId id;
      if (mpi_->rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
      MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
      NCCL_CHECK(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()));
      rank_ = mpi_->rank(), size_ = mpi_->size();
      ANGLE_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
      streams_ = std::make_unique<CudaStreams>(side_, device_, comm_);
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
    ANGLE_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    streams_ = std::make_unique<CudaStreams>(side_, device_, comm_);
  }
  ~NcclComm() override {
    streams_.reset();
    // Unwinding from an error (the job is about to be aborted): ncclCommDestroy would wait for
    // collectives a failed peer never joins, with no watchdog left to end the wait.
    if (std::uncaught_exceptions() > 0)
      ncclCommAbort(comm_);
    else
      ncclCommDestroy(comm_);
    cudaStreamDestroy(side_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return mpi_->local_rank(); }
  int node() const override { return mpi_->node(); }
  int node_size() const override { return mpi_->node_size(); }
  std::string backend() const override { return "nccl (cuda:" + std::to_string(device_) + ")"; }
  at::Device device() const override { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_)); }

 protected:
  Watchdog watchdog() const {
    return {timeout(), [this](const CollectiveRecord& r) { timed_out(r); }, {}, {}};
  }
  // Two ranks on one GPU (ranks outnumbering GPUs, or a launcher handing one GPU to several
  // ranks) fail here, with their ranks, before NCCL is set up. A GPU's UUID is unique across
  // hosts, so no node split (which containers without a shared /dev/shm can get wrong) is needed.
  void check_one_gpu_per_rank() const {
    const std::string mine = uuid_of(device_);  // "GPU-" and 32 hex digits on every rank
    std::vector<char> all(mine.size() * mpi_->size());
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, all.data(), static_cast<int>(mine.size()),
                  MPI_CHAR, MPI_COMM_WORLD);
    std::vector<std::string> gpus;
    for (int r = 0; r < mpi_->size(); ++r) gpus.emplace_back(all.data() + r * mine.size(), mine.size());
    check_distinct_gpus(gpus);
  }
  static void check_cuda(const at::Tensor& t) {
    ANGLE_CHECK(t.is_cuda() && t.is_contiguous(), "nccl backend needs contiguous CUDA tensors");
  }
  // Orders the side stream after the compute stream, runs `launch(side stream)`, returns its work.
  template <typename Launch>
  std::unique_ptr<StreamWork> run(std::vector<at::Tensor> keep, Launch&& launch) {
    for (const at::Tensor& t : keep)
      if (t.defined()) check_cuda(t);
    const c10::cuda::CUDAGuard on_this_gpu(static_cast<c10::DeviceIndex>(device_));
    const uint64_t ready = streams_->record_on_compute_stream();
    ANGLE_CUDA_CHECK(cudaStreamWaitEvent(side_, streams_->event(ready), 0));
    streams_->release(ready);
    auto work = std::make_unique<StreamWork>(*streams_, *in_flight_, std::move(keep));
    launch(side_);
    work->launched();
    return work;
  }
  // The blocking forms: their results are read on the host, so the host waits (under the watchdog).
  template <typename Launch>
  void run_blocking(std::vector<at::Tensor> keep, Launch&& launch) {
    run(std::move(keep), std::forward<Launch>(launch))->wait_on_host(watchdog());
  }
  void do_synchronize() override {
    const uint64_t event = streams_->record_on_compute_stream();
    host_wait(*streams_, event, {0, "synchronize", "[]", "-"}, watchdog());
    streams_->release(event);
  }

  void do_all_reduce_sum(at::Tensor& t) override {
    run_blocking({t}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), ncclSum, comm_, s));
    });
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
      run_blocking({sum}, [&](cudaStream_t s) {
        NCCL_CHECK(ncclAllReduce(sum.data_ptr(), sum.data_ptr(), sum.numel(), nccl_type(sum.scalar_type()), ncclSum,
                                 comm_, s));
      });
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
    run_blocking({padded, gathered}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllGather(padded.data_ptr(), gathered.data_ptr(), padded.numel(), nccl_type(rows.scalar_type()),
                               comm_, s));
    });
    std::vector<at::Tensor> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(gathered.narrow(0, r * most, counts[r]));
    return at::cat(parts);
  }
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override {
    at::Tensor out = at::empty({flat.numel() / size()}, flat.options());
    run_blocking({flat, out}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclReduceScatter(flat.data_ptr(), out.data_ptr(), out.numel(), nccl_type(flat.scalar_type()), ncclSum,
                                   comm_, s));
    });
    return out;
  }
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override {
    run_blocking({chunk, flat_out}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllGather(chunk.data_ptr(), flat_out.data_ptr(), chunk.numel(), nccl_type(chunk.scalar_type()),
                               comm_, s));
    });
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
    run_blocking({t}, [&](cudaStream_t s) {
      NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), root, comm_, s));
    });
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
  std::unique_ptr<CudaStreams> streams_;
};

}  // namespace

bool nccl_built() { return true; }
std::unique_ptr<Comm> make_nccl_comm(const PlacementRequest& request) { return std::make_unique<NcclComm>(request); }

}  // namespace angle::comm
