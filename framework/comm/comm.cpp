#include "comm/comm.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace angle::comm {

namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

const CollectiveRecord& Comm::begin(const char* op, const at::Tensor& tensor) {
  CollectiveRecord& r = ring_[sequence_ % ring_.size()];
  r = {sequence_++, op, tensor.defined() ? shape_of(tensor) : "[]",
       tensor.defined() ? std::string(c10::toString(tensor.scalar_type())) : "-"};
  in_flight_ = &r;
  return r;
}

std::vector<CollectiveRecord> Comm::history() const {
  std::vector<CollectiveRecord> out;
  for (uint64_t s = sequence_ > ring_.size() ? sequence_ - ring_.size() : 0; s < sequence_; ++s)
    out.push_back(ring_[s % ring_.size()]);
  return out;
}

void Comm::timed_out(const CollectiveRecord& r) const {
  std::fprintf(stderr,
               "angle: error: rank %d: collective #%llu %s %s %s did not complete within %.0f s (watchdog); a rank "
               "died or is stuck; aborting all ranks\n",
               rank(), static_cast<unsigned long long>(r.sequence), r.op.c_str(), r.shape.c_str(), r.dtype.c_str(),
               timeout_s_);
  for (const auto& h : history())
    std::fprintf(stderr, "  rank %d history: #%llu %s %s %s\n", rank(), static_cast<unsigned long long>(h.sequence),
                 h.op.c_str(), h.shape.c_str(), h.dtype.c_str());
  std::fflush(stderr);
  abort_all(3);
  std::_Exit(3);
}

void Comm::all_reduce_sum(at::Tensor& tensor) {
  begin("all_reduce", tensor);
  do_all_reduce_sum(tensor);
}
at::Tensor Comm::all_gather_rows(const at::Tensor& local) {
  begin("all_gather_rows", local);
  return do_all_gather_rows(local);
}
at::Tensor Comm::reduce_scatter_sum(const at::Tensor& flat) {
  ANGLE_CHECK(flat.dim() == 1 && flat.numel() % size() == 0, "reduce_scatter: numel ", flat.numel(),
              " is not divisible by ", size(), " ranks");
  begin("reduce_scatter", flat);
  return do_reduce_scatter_sum(flat);
}
void Comm::all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) {
  ANGLE_CHECK(flat_out.numel() == chunk.numel() * size(), "all_gather: output of ", flat_out.numel(),
              " elements for ", size(), " chunks of ", chunk.numel());
  begin("all_gather", chunk);
  do_all_gather_into(chunk, flat_out);
}
void Comm::broadcast(at::Tensor& tensor, int root) {
  begin("broadcast", tensor);
  do_broadcast(tensor, root);
}
void Comm::barrier() {
  begin("barrier", at::Tensor());
  do_barrier();
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace angle::comm
