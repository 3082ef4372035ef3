#include "model/backbone.h"

#include <ATen/ATen.h>

#include "model/storage.h"

namespace angle::model {

at::Tensor UnitSource::lookup(size_t unit, const at::Tensor& ids) {
  return at::embedding(acquire(unit)[0], ids, -1, false, /*sparse=*/true);
}

void move_parameters(const std::vector<std::pair<std::string, at::Tensor>>& parameters, at::Device device,
                     at::ScalarType dtype, const std::function<bool(const std::string&)>& keeps_fp32) {
  for (const auto& [name, param] : parameters) {
    if (!has_storage(param)) continue;
    at::Tensor p = param;
    p.set_data(param.data().to(device, keeps_fp32(name) ? at::kFloat : dtype));
  }
}

}  // namespace angle::model
