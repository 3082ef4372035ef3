#include "comm/mpi_comm.h"

#include <ATen/ATen.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace angle::comm {
namespace {

// MPI has no bfloat16: bf16 tensors travel as fp32 (the reduction is then done in fp32 too).
MPI_Datatype mpi_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    default: ANGLE_FAIL("MPI backend: unsupported dtype ", type, " (fp32, fp64, bf16, int32, int64)");
  }
}

at::Tensor wire(const at::Tensor& t) {
  ANGLE_CHECK(t.device().is_cpu(), "MPI backend needs CPU tensors (use the nccl backend for CUDA)");
  return (t.scalar_type() == at::kBFloat16 ? t.to(at::kFloat) : t).contiguous();
}

}  // namespace

MpiComm::MpiComm() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    initialized_here_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_free(&node);
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialized_here_ && !finalized) MPI_Finalize();
}

void MpiComm::wait(MPI_Request& request) {
  const double start = now_seconds();
  int done = 0;
  for (long polls = 0;; ++polls) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (polls > 1000) {  // after a short spin, poll gently
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (now_seconds() - start > timeout()) timed_out(*in_flight_);
    }
  }
}

void MpiComm::abort_all(int code) const { MPI_Abort(MPI_COMM_WORLD, code); }

void MpiComm::do_all_reduce_sum(at::Tensor& tensor) {
  at::Tensor buffer = wire(tensor);
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()),
                 MPI_SUM, MPI_COMM_WORLD, &request);
  wait(request);
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

at::Tensor MpiComm::do_all_gather_rows(const at::Tensor& local) {
  at::Tensor buffer = wire(local);
  int64_t row = 1;  // elements per row (known even when this rank sends no rows)
  for (int64_t d = 1; d < buffer.dim(); ++d) row *= buffer.size(d);
  int64_t rows = buffer.dim() > 0 ? buffer.size(0) : 1;
  std::vector<int64_t> all_rows(size_);
  MPI_Request request;
  MPI_Iallgather(&rows, 1, MPI_INT64_T, all_rows.data(), 1, MPI_INT64_T, MPI_COMM_WORLD, &request);
  wait(request);
  std::vector<int> counts(size_), displacements(size_);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    counts[r] = static_cast<int>(all_rows[r] * row);
    displacements[r] = static_cast<int>(total * row);
    total += all_rows[r];
  }
  std::vector<int64_t> shape = buffer.sizes().vec();
  if (shape.empty()) shape = {1};
  shape[0] = total;
  at::Tensor out = at::empty(shape, buffer.options());
  MPI_Iallgatherv(buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()), out.data_ptr(),
                  counts.data(), displacements.data(), mpi_type(buffer.scalar_type()), MPI_COMM_WORLD, &request);
  wait(request);
  return out.to(local.scalar_type());
}

at::Tensor MpiComm::do_reduce_scatter_sum(const at::Tensor& flat) {
  at::Tensor buffer = wire(flat);
  at::Tensor out = at::empty({buffer.numel() / size_}, buffer.options());
  MPI_Request request;
  MPI_Ireduce_scatter_block(buffer.data_ptr(), out.data_ptr(), static_cast<int>(out.numel()),
                            mpi_type(buffer.scalar_type()), MPI_SUM, MPI_COMM_WORLD, &request);
  wait(request);
  return out.to(flat.scalar_type());
}

void MpiComm::do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) {
  at::Tensor send = wire(chunk), receive = wire(flat_out);
  MPI_Request request;
  MPI_Iallgather(send.data_ptr(), static_cast<int>(send.numel()), mpi_type(send.scalar_type()), receive.data_ptr(),
                 static_cast<int>(send.numel()), mpi_type(send.scalar_type()), MPI_COMM_WORLD, &request);
  wait(request);
  if (!receive.is_same(flat_out)) flat_out.copy_(receive.view(flat_out.sizes()));
}

void MpiComm::do_broadcast(at::Tensor& tensor, int root) {
  at::Tensor buffer = wire(tensor);
  MPI_Request request;
  MPI_Ibcast(buffer.data_ptr(), static_cast<int>(buffer.numel()), mpi_type(buffer.scalar_type()), root, MPI_COMM_WORLD,
             &request);
  wait(request);
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

void MpiComm::do_barrier() {
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  wait(request);
}

}  // namespace angle::comm
