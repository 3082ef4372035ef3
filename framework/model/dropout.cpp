#include "model/dropout.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <mutex>

#include "core/error.h"

namespace angle::model {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kMul0 = 0xD2511F53, kMul1 = 0xCD9E8D57, kWeyl0 = 0x9E3779B9, kWeyl1 = 0xBB67AE85;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0], p1 = static_cast<uint64_t>(kMul1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k = {k[0] + kWeyl0, k[1] + kWeyl1};
  }
  return c;
}

at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed) {
  ANGLE_CHECK(p >= 0 && p < 1, "dropout probability ", p, " must be in [0, 1)");
  at::Tensor mask = at::empty(like.sizes(), like.options().device(at::kCPU).memory_format(at::MemoryFormat::Contiguous));
  // Element i keeps when 32 bits of block i / 4 are at least p * 2^32 (exact to 2^-32).
  const auto threshold = static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
  const std::array<uint32_t, 2> key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const int64_t n = mask.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "dropout_mask", [&] {
    scalar_t* out = mask.data_ptr<scalar_t>();
    const auto keep = static_cast<scalar_t>(1.0 / (1.0 - p)), drop = static_cast<scalar_t>(0);
    at::parallel_for(0, (n + 3) / 4, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t block = begin; block < end; ++block) {
        const auto bits = philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0}, key);
        for (int64_t j = 0; j < 4 && 4 * block + j < n; ++j) out[4 * block + j] = bits[j] >= threshold ? keep : drop;
      }
    });
  });
  return mask;
}

at::Tensor dropout(const at::Tensor& x, double p) {
  if (p == 0) return x;
  if (!x.device().is_cpu()) return at::dropout(x, p, /*train=*/true);
  uint64_t seed = 0;
  {
    auto* generator = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(generator->mutex_);
    seed = generator->random64();
  }
  return x * dropout_mask(x, p, seed);
}

}  // namespace angle::model
