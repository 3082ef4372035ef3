#include "model/dropout.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "core/error.h"

namespace angle::model {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53, kMul1 = 0xCD9E8D57, kWeyl0 = 0x9E3779B9, kWeyl1 = 0xBB67AE85;

// Element i keeps when its 32 bits are at least p * 2^32.
uint32_t keep_threshold(double p) {
  ANGLE_CHECK(p >= 0 && p < 1, "dropout probability ", p, " must be in [0, 1)");
  return static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
}

// (high, low) 32 bits of m * c for c in [0, 2^32) without int64 overflow: c in 16-bit halves.
std::pair<at::Tensor, at::Tensor> mul_hi_lo(int64_t m, const at::Tensor& c) {
  const at::Tensor low = at::bitwise_and(c, 0xffff) * m, high = at::bitwise_right_shift(c, 16) * m;  // < 2^48 each
  const at::Tensor sum = low + at::bitwise_left_shift(at::bitwise_and(high, 0xffff), 16);
  return {at::bitwise_right_shift(sum, 32) + at::bitwise_right_shift(high, 16), at::bitwise_and(sum, 0xffffffffLL)};
}

}  // namespace

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0], p1 = static_cast<uint64_t>(kMul1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k = {k[0] + kWeyl0, k[1] + kWeyl1};
  }
  return c;
}

at::Tensor keyed_mask(const MaskRows& rows, int64_t width, double p, uint32_t site, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return keyed_mask_by_ops(rows, width, p, site, options);
  const uint32_t threshold = keep_threshold(p);
  const at::Tensor keys = rows.keys.contiguous(), positions = rows.positions.contiguous(),
                   heads = rows.heads.contiguous(), starts = rows.col_start.contiguous();
  const int64_t count = keys.numel();
  at::Tensor mask = at::empty({count, width}, options.memory_format(at::MemoryFormat::Contiguous));
  const int64_t *key = keys.data_ptr<int64_t>(), *position = positions.data_ptr<int64_t>(),
                *head = heads.data_ptr<int64_t>(), *start = starts.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "keyed_mask", [&] {
    const auto keep = static_cast<scalar_t>(1.0 / (1.0 - p)), drop = static_cast<scalar_t>(0);
    scalar_t* base = mask.data_ptr<scalar_t>();
    at::parallel_for(0, count, std::max<int64_t>(1, 8192 / std::max<int64_t>(width, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* out = base + r * width;
        const auto k = static_cast<uint64_t>(key[r]);
        const std::array<uint32_t, 2> row_key = {static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32)};
        const int64_t first = std::clamp<int64_t>(start[r], 0, width);
        std::fill(out, out + first, keep);  // left padding: never read through
        for (int64_t e = 0; first + e < width; e += 4) {
          const auto bits = philox4x32({static_cast<uint32_t>(e / 4), static_cast<uint32_t>(position[r]), site,
                                        static_cast<uint32_t>(head[r])}, row_key);
          for (int64_t j = 0; j < 4 && first + e + j < width; ++j) out[first + e + j] = bits[j] >= threshold ? keep : drop;
        }
      }
    });
  });
  return mask;
}

at::Tensor keyed_mask_by_ops(const MaskRows& rows, int64_t width, double p, uint32_t site,
                             const at::TensorOptions& options) {
  const double threshold = keep_threshold(p);
  const at::TensorOptions longs = at::TensorOptions(options.device()).dtype(at::kLong);
  auto column = [&](const at::Tensor& t) { return t.to(longs).view({-1, 1}); };
  auto word = [](const at::Tensor& t) { return at::bitwise_and(t, 0xffffffffLL); };
  const at::Tensor element = at::arange(width, longs).view({1, -1}) - column(rows.col_start);  // [R, W]
  const at::Tensor padding = element < 0, e = element.clamp_min(0);
  at::Tensor c0 = at::bitwise_right_shift(e, 2), c1 = word(column(rows.positions)),
             c2 = at::full({1, 1}, static_cast<int64_t>(site), longs), c3 = word(column(rows.heads));
  at::Tensor k0 = word(column(rows.keys)), k1 = word(at::bitwise_right_shift(column(rows.keys), 32));
  for (int round = 0; round < 10; ++round) {
    auto [high0, low0] = mul_hi_lo(kMul0, c0);
    auto [high1, low1] = mul_hi_lo(kMul1, c2);
    c0 = at::bitwise_xor(at::bitwise_xor(high1, c1), k0), c1 = low1;
    c2 = at::bitwise_xor(at::bitwise_xor(high0, c3), k1), c3 = low0;
    k0 = word(k0 + kWeyl0), k1 = word(k1 + kWeyl1);
  }
  const at::Tensor lane = at::bitwise_and(e, 3);
  const at::Tensor bits = at::where(lane == 0, c0, at::where(lane == 1, c1, at::where(lane == 2, c2, c3)));
  const at::Tensor kept = at::logical_or(bits >= threshold, padding);
  return at::where(kept, at::scalar_tensor(1.0 / (1.0 - p), options), at::scalar_tensor(0.0, options));
}

KeyedDropout::KeyedDropout(const at::Tensor& row_keys, const at::Tensor& attention_mask)
    : length_(attention_mask.size(1)) {
  if (!row_keys.defined()) return;
  ANGLE_CHECK(row_keys.dim() == 1 && row_keys.size(0) == attention_mask.size(0), "dropout keys: ", row_keys.numel(),
              " for a batch of ", attention_mask.size(0), " texts");
  keys_ = row_keys.to(attention_mask.device(), at::kLong);
  start_ = (attention_mask.cumsum(1) == 0).sum(1);  // leading padding
}

at::Tensor KeyedDropout::apply(const at::Tensor& x, double p, uint32_t site, const MaskRows& rows) const {
  const int64_t width = x.size(-1);
  return x * keyed_mask(rows, width, p, site, x.options()).view(x.sizes());
}

at::Tensor KeyedDropout::tokens(const at::Tensor& x, double p, uint32_t site, const at::Tensor& flat) const {
  if (p == 0) return x;
  ANGLE_CHECK(keys_.defined(), "dropout in training needs one key per text (model/dropout.h)");
  const at::Tensor text = at::div(flat, length_, "floor"), zeros = at::zeros_like(flat);
  return apply(x, p, site, {keys_.index_select(0, text), flat - text * length_ - start_.index_select(0, text), zeros, zeros});
}

at::Tensor KeyedDropout::padded(const at::Tensor& x, double p, uint32_t site) const {
  if (p == 0) return x;
  return tokens(x, p, site, at::arange(x.numel() / x.size(-1), keys_.defined() ? keys_.options() : x.options().dtype(at::kLong)));
}

at::Tensor KeyedDropout::scores(const at::Tensor& probs, double p, uint32_t site) const {
  if (p == 0) return probs;
  ANGLE_CHECK(keys_.defined(), "dropout in training needs one key per text (model/dropout.h)");
  const int64_t heads = probs.size(1), queries = probs.size(2);
  const at::Tensor row = at::arange(probs.numel() / probs.size(-1), keys_.options());
  const at::Tensor text = at::div(row, heads * queries, "floor"), start = start_.index_select(0, text);
  const at::Tensor head = at::remainder(at::div(row, queries, "floor"), heads), query = at::remainder(row, queries);
  return apply(probs, p, site, {keys_.index_select(0, text), query - start, head, start});
}

}  // namespace angle::model
