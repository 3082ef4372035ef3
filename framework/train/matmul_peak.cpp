#include "train/matmul_peak.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/log.h"

namespace angle::train {

double linear_layers_mm_flops(const model::ModelShape& shape, int64_t rows, c10::ScalarType dtype,
                              const c10::Device& device, double seconds) {
  const int64_t h = shape.hidden, f = shape.intermediate;
  rows = std::max<int64_t>(rows, 1);
  std::vector<std::pair<int64_t, int64_t>> shapes = {{h, h}, {h, h}, {h, h}, {h, h}, {h, f}, {f, h}};
  if (shape.decoder) {
    const int64_t q = shape.heads * shape.head_dim, kv = shape.kv_heads * shape.head_dim;
    shapes = {{h, q}, {h, kv}, {h, kv}, {q, h}, {h, f}, {h, f}, {f, h}};
  }
  std::vector<at::Tensor> inputs, weights;
  double flops_per_layer = 0;
  for (const auto& [in, out] : shapes) {
    inputs.push_back(at::randn({rows, in}).to(device, dtype));
    weights.push_back(at::randn({in, out}).to(device, dtype));
    flops_per_layer += 2.0 * static_cast<double>(rows * in * out);
  }
  auto layer = [&] {
    at::Tensor out;
    for (size_t i = 0; i < shapes.size(); ++i) out = at::mm(inputs[i], weights[i]);
    (void)out.sum().item<float>();  // waits for a GPU's queue; on a CPU a small fraction of the layer
  };
  layer();  // warm-up: thread pool, packing buffers
  long repeats = 0;
  const double start = now_seconds();
  double elapsed = 0;
  do {
    layer();
    ++repeats;
    elapsed = now_seconds() - start;
  } while (elapsed < seconds);
  return flops_per_layer * static_cast<double>(repeats) / elapsed;
}

}  // namespace angle::train
