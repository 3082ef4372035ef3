#include "loss/gather.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace angle::loss {
namespace {

struct GatherRows : torch::autograd::Function<GatherRows> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& local, int64_t comm_address) {
    auto& comm = *reinterpret_cast<comm::Comm*>(comm_address);
    at::Tensor counts = comm.all_gather_rows(at::full({1}, local.size(0), local.options().dtype(at::kLong))).cpu();
    ctx->saved_data["begin"] = counts.narrow(0, 0, comm.rank()).sum().item<int64_t>();
    ctx->saved_data["rows"] = local.size(0);
    return comm.all_gather_rows(local.detach().contiguous());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t begin = ctx->saved_data["begin"].toInt(), rows = ctx->saved_data["rows"].toInt();
    return {grads[0].narrow(0, begin, rows), at::Tensor()};
  }
};

}  // namespace

at::Tensor gather_rows_with_grad(const at::Tensor& local, comm::Comm& comm) {
  if (comm.size() == 1) return local;
  return GatherRows::apply(local, reinterpret_cast<int64_t>(&comm));
}

}  // namespace angle::loss
