#include "model/pooling.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace angle::model {

Pooling Pooling::parse(const std::string& name) {
  static const std::pair<const char*, PoolingKind> kNames[] = {
      {"cls", PoolingKind::cls}, {"cls_avg", PoolingKind::cls_avg}, {"cls_max", PoolingKind::cls_max},
      {"mean", PoolingKind::mean}, {"avg", PoolingKind::mean},     {"max", PoolingKind::max},
      {"last", PoolingKind::last}};
  for (const auto& [n, kind] : kNames)
    if (name == n) return {kind, 0};
  char* end = nullptr;
  long long index = std::strtoll(name.c_str(), &end, 10);
  ANGLE_CHECK(!name.empty() && end && *end == '\0', "unknown pooling '", name,
              "' (choose cls, cls_avg, cls_max, mean, max, last, or a token index)");
  return {PoolingKind::index, index};
}

std::string Pooling::name() const {
  switch (kind) {
    case PoolingKind::cls: return "cls";
    case PoolingKind::cls_avg: return "cls_avg";
    case PoolingKind::cls_max: return "cls_max";
    case PoolingKind::mean: return "mean";
    case PoolingKind::max: return "max";
    case PoolingKind::last: return "last";
    case PoolingKind::index: return std::to_string(index);
  }
  return "?";
}

at::Tensor pool(const at::Tensor& hidden, const at::Tensor& mask, const Pooling& pooling, PaddingSide side) {
  at::Tensor m = mask.to(hidden.scalar_type()).unsqueeze(-1);  // [B, T, 1]
  auto masked_mean = [&] { return (hidden * m).sum(1) / m.sum(1); };
  auto masked_max = [&] { return std::get<0>((hidden * m).max(1)); };
  at::Tensor cls = hidden.select(1, 0);
  switch (pooling.kind) {
    case PoolingKind::cls: return cls;
    case PoolingKind::cls_avg: return (cls + masked_mean()) / 2;
    case PoolingKind::cls_max: return (cls + masked_max()) / 2;
    case PoolingKind::mean: return masked_mean();
    case PoolingKind::max: return masked_max();
    case PoolingKind::last: {
      if (side == PaddingSide::left) return hidden.select(1, -1);
      at::Tensor last = mask.to(at::kLong).sum(1) - 1;  // [B]
      return hidden.gather(1, last.view({-1, 1, 1}).expand({hidden.size(0), 1, hidden.size(2)})).squeeze(1);
    }
    case PoolingKind::index: {
      const int64_t length = hidden.size(1);
      ANGLE_CHECK(pooling.index >= -length && pooling.index < length, "pooling index ", pooling.index,
                  " is outside the sequence length ", length);
      return hidden.select(1, pooling.index);
    }
  }
  ANGLE_FAIL("unhandled pooling kind");
}

}  // namespace angle::model
