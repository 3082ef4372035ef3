#include "loss/gather.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace angle::loss {
namespace {

struct GatherRows : torch::autograd::Function<GatherRows> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& local, int64_t comm_address,
                            std::vector<int64_t> counts) {
    auto& comm = *reinterpret_cast<comm::Comm*>(comm_address);
    int64_t begin = 0;
    for (int r = 0; r < comm.rank(); ++r) begin += counts[r];
    ctx->saved_data["begin"] = begin;
    ctx->saved_data["rows"] = local.size(0);
    return comm.all_gather_rows_known(local.detach().contiguous(), counts);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t begin = ctx->saved_data["begin"].toInt(), rows = ctx->saved_data["rows"].toInt();
    return {grads[0].narrow(0, begin, rows), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor gather_rows_with_grad(const at::Tensor& local, comm::Comm& comm, const std::vector<int64_t>& counts) {
  if (comm.size() == 1) return local;
  return GatherRows::apply(local, reinterpret_cast<int64_t>(&comm), counts);
}

}  // namespace angle::loss
