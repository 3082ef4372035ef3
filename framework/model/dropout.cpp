#include "model/dropout.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <type_traits>
#include <utility>

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

namespace {

// PhiloxBlocks (model/dropout.h). The lanes are independent: each 32-bit word sits in a 64-bit
// lane, where one vpmuludq gives the full 32 x 32 -> 64-bit product. Unit test
// dropout/philox_blocks_equal_philox in every width this CPU runs.
#if defined(__x86_64__)
// GCC 12's avx512fintrin.h builds its masked forms on _mm512_undefined_epi32() and then warns that
// the undefined vector is used uninitialised (a false positive in the header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void philox_blocks_avx512(uint32_t first, uint32_t c1, uint32_t c2, uint32_t c3,
                                                              uint32_t k0, uint32_t k1, uint32_t words[4][kPhiloxBlocks]) {
  const __m512i low = _mm512_set1_epi64(0xffffffffLL), m0 = _mm512_set1_epi64(kMul0), m1 = _mm512_set1_epi64(kMul1);
  for (int half = 0; half < kPhiloxBlocks / 8; ++half) {
    __m512i x0 = _mm512_and_si512(_mm512_add_epi64(_mm512_set1_epi64(first + 8LL * half), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)), low);
    __m512i x1 = _mm512_set1_epi64(c1), x2 = _mm512_set1_epi64(c2), x3 = _mm512_set1_epi64(c3);
    uint32_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
      const __m512i p0 = _mm512_mul_epu32(x0, m0), p1 = _mm512_mul_epu32(x2, m1);
      x0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), x1), _mm512_set1_epi64(a));
      x2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), x3), _mm512_set1_epi64(b));
      x1 = _mm512_and_si512(p1, low), x3 = _mm512_and_si512(p0, low);
      a += kWeyl0, b += kWeyl1;
    }
    for (const auto& [w, x] : {std::pair{0, x0}, {1, x1}, {2, x2}, {3, x3}})
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(&words[w][8 * half]), _mm512_cvtepi64_epi32(x));
  }
}

#pragma GCC diagnostic pop

__attribute__((target("avx2"))) void philox_blocks_avx2(uint32_t first, uint32_t c1, uint32_t c2, uint32_t c3,
                                                         uint32_t k0, uint32_t k1, uint32_t words[4][kPhiloxBlocks]) {
  const __m256i low = _mm256_set1_epi64x(0xffffffffLL), m0 = _mm256_set1_epi64x(kMul0), m1 = _mm256_set1_epi64x(kMul1);
  for (int quarter = 0; quarter < kPhiloxBlocks / 4; ++quarter) {
    __m256i x0 = _mm256_and_si256(_mm256_add_epi64(_mm256_set1_epi64x(first + 4LL * quarter), _mm256_set_epi64x(3, 2, 1, 0)), low);
    __m256i x1 = _mm256_set1_epi64x(c1), x2 = _mm256_set1_epi64x(c2), x3 = _mm256_set1_epi64x(c3);
    uint32_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
      const __m256i p0 = _mm256_mul_epu32(x0, m0), p1 = _mm256_mul_epu32(x2, m1);
      x0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1), _mm256_set1_epi64x(a));
      x2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3), _mm256_set1_epi64x(b));
      x1 = _mm256_and_si256(p1, low), x3 = _mm256_and_si256(p0, low);
      a += kWeyl0, b += kWeyl1;
    }
    alignas(32) uint64_t lanes[4];
    for (const auto& [w, x] : {std::pair{0, x0}, {1, x1}, {2, x2}, {3, x3}}) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), x);
      for (int i = 0; i < 4; ++i) words[w][4 * quarter + i] = static_cast<uint32_t>(lanes[i]);
    }
  }
}

#endif

void philox_blocks_scalar(uint32_t first, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                          uint32_t words[4][kPhiloxBlocks]) {
  for (int i = 0; i < kPhiloxBlocks; ++i) {
    const auto block = philox4x32({first + static_cast<uint32_t>(i), c1, c2, c3}, {k0, k1});
    for (int w = 0; w < 4; ++w) words[w][i] = block[w];
  }
}

}  // namespace

std::vector<std::pair<std::string, PhiloxBlocks>> philox_block_functions() {
  std::vector<std::pair<std::string, PhiloxBlocks>> out;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) out.emplace_back("avx512f", philox_blocks_avx512);
  if (__builtin_cpu_supports("avx2")) out.emplace_back("avx2", philox_blocks_avx2);
#endif
  out.emplace_back("scalar", philox_blocks_scalar);
  return out;
}

namespace {

// Calls chunk(r, c, kept, n) over every row r of a [R, width] mask, in parallel over the rows, for
// consecutive runs of at most 64 columns c .. c + n - 1 whose keep bytes are kept[0 .. n - 1] (1 kept,
// 0 dropped); the columns before a row's col_start (left padding) are kept. Runs of bytes rather than
// a call per element, so that the callers' loops vectorize.
template <typename Chunk>
void for_each_chunk(const MaskRows& rows, int64_t width, double p, uint32_t site, const Chunk& chunk) {
  static const PhiloxBlocks philox_blocks = philox_block_functions().front().second;  // the widest
  constexpr int64_t kRun = 4 * kPhiloxBlocks;
  const uint32_t threshold = keep_threshold(p);
  const at::Tensor keys = rows.keys.contiguous(), positions = rows.positions.contiguous(),
                   heads = rows.heads.contiguous(), starts = rows.col_start.contiguous();
  const int64_t *key = keys.data_ptr<int64_t>(), *position = positions.data_ptr<int64_t>(),
                *head = heads.data_ptr<int64_t>(), *start = starts.data_ptr<int64_t>();
  at::parallel_for(0, keys.numel(), std::max<int64_t>(1, 8192 / std::max<int64_t>(width, 1)), [&](int64_t begin, int64_t end) {
    uint8_t ones[kRun], kept[kRun];
    std::fill(std::begin(ones), std::end(ones), uint8_t{1});
    uint32_t words[4][kPhiloxBlocks];
    for (int64_t r = begin; r < end; ++r) {
      const auto k = static_cast<uint64_t>(key[r]);
      const std::array<uint32_t, 2> row_key = {static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32)};
      const int64_t first = std::clamp<int64_t>(start[r], 0, width);
      for (int64_t c = 0; c < first; c += kRun) chunk(r, c, ones, std::min(kRun, first - c));
      for (int64_t e = 0; first + e < width; e += kRun) {
        philox_blocks(static_cast<uint32_t>(e / 4), static_cast<uint32_t>(position[r]), site,
                      static_cast<uint32_t>(head[r]), row_key[0], row_key[1], words);
        for (int i = 0; i < kPhiloxBlocks; ++i)
          for (int w = 0; w < 4; ++w) kept[4 * i + w] = words[w][i] >= threshold;
        chunk(r, first + e, kept, std::min(kRun, width - first - e));
      }
    }
  });
}

// The dropout's product and its gradient, out[j] = kept[j] ? round(in[j] * keep) : +0 for j < n, in
// a form GCC vectorizes: bf16 as its bits (rounded to nearest even as c10 rounds, NaN to 0x7fc0), the
// dropped elements masked rather than branched to. Bitwise static_cast<Out>(static_cast<float>(in) *
// keep). Compiled for AVX-512, AVX2 and the baseline; the loader picks one (GCC's target_clones).
inline float load(const float* p) { return *p; }
inline float load(const uint16_t* bf16) { return std::bit_cast<float>(static_cast<uint32_t>(*bf16) << 16); }
inline float round_to(float v, const float*) { return v; }
inline uint16_t round_to(float v, const uint16_t*) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  return v != v ? uint16_t{0x7fc0} : static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
inline float masked(float v, uint32_t mask) { return std::bit_cast<float>(std::bit_cast<uint32_t>(v) & mask); }
inline uint16_t masked(uint16_t v, uint32_t mask) { return static_cast<uint16_t>(v & mask); }

template <typename In, typename Out>
[[gnu::always_inline]] inline void scale_kept_loop(const In* __restrict in, const uint8_t* __restrict kept, float keep,
                                                   Out* __restrict out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = masked(round_to(load(in + j) * keep, out), 0u - kept[j]);
}

#define ANGLE_SCALE_KEPT(In, Out)                                                                              \
  [[gnu::target_clones("avx512f", "avx2", "default")]] void scale_kept(const In* in, const uint8_t* kept, float keep, \
                                                                      Out* out, int64_t n) {                 \
    scale_kept_loop(in, kept, keep, out, n);                                                                   \
  }
ANGLE_SCALE_KEPT(float, float)
ANGLE_SCALE_KEPT(uint16_t, float)
ANGLE_SCALE_KEPT(uint16_t, uint16_t)
ANGLE_SCALE_KEPT(float, uint16_t)
#undef ANGLE_SCALE_KEPT

// float and bf16 through scale_kept(), other types (double, half) element by element.
template <typename T>
constexpr bool kVectorized = std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>;
inline const float* raw(const float* p) { return p; }
inline float* raw(float* p) { return p; }
inline const uint16_t* raw(const c10::BFloat16* p) { return reinterpret_cast<const uint16_t*>(p); }
inline uint16_t* raw(c10::BFloat16* p) { return reinterpret_cast<uint16_t*>(p); }

// The product in Keep's type (the forward's output type), rounded to Out.
template <typename In, typename Out, typename Keep>
void scale_kept(const In* in, const uint8_t* kept, Keep keep, Out* out, int64_t n) {
  if constexpr (kVectorized<In> && kVectorized<Out>) {
    scale_kept(raw(in), kept, static_cast<float>(keep), raw(out), n);
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = kept[j] ? static_cast<Out>(static_cast<Keep>(in[j]) * keep) : static_cast<Out>(0);
  }
}

// Calls body.template operator()<in_t, out_t>() for the input type and an output type that is the
// input's or float.
template <typename Body>
void dispatch_in_out(at::ScalarType in, at::ScalarType out, const char* name, const Body& body) {
  ANGLE_CHECK(out == in || out == at::kFloat, name, ": output type ", out, " for input ", in,
              " (the input's type or float)");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, in, "keyed_dropout", [&] {
    if (out == in) body.template operator()<scalar_t, scalar_t>();
    else body.template operator()<scalar_t, float>();
  });
}

// x * keyed mask on the CPU in one pass, without the mask as a tensor of x's type: autograd keeps
// a byte per element for the backward pass (peft's dropout keeps a bool mask too), not a float
// mask, and no mask is written and read again. The output may be float for a bf16 input (a LoRA
// adapter's input, which peft casts to the adapter's float before its dropout): the cast happens in
// the same pass, so no float copy of the input is made first. Bitwise x.to(out) * mask: the kept
// scale in the output type, the product rounded to it; the gradient likewise, in the input's type.
class CpuKeyedDropout : public torch::autograd::Function<CpuKeyedDropout> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const MaskRows& rows,
                            double p, uint32_t site, at::ScalarType out_type) {
    const at::Tensor x = input.contiguous();
    const int64_t width = x.size(-1);
    at::Tensor out = at::empty(x.sizes(), x.options().dtype(out_type)),
               kept = at::empty(x.sizes(), x.options().dtype(at::kByte));
    uint8_t* kept_base = kept.data_ptr<uint8_t>();
    double scale = 0;
    dispatch_in_out(x.scalar_type(), out_type, "keyed_dropout", [&]<typename in_t, typename out_t>() {
      const auto keep = static_cast<out_t>(1.0 / (1.0 - p));
      scale = static_cast<double>(keep);
      const in_t* in = x.data_ptr<in_t>();
      out_t* result = out.data_ptr<out_t>();
      for_each_chunk(rows, width, p, site, [&](int64_t r, int64_t c, const uint8_t* k, int64_t n) {
        const int64_t i = r * width + c;
        std::copy(k, k + n, kept_base + i);
        scale_kept(in + i, k, keep, result + i, n);
      });
    });
    ctx->save_for_backward({kept});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["input_type"] = x.scalar_type();
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor kept = ctx->get_saved_variables()[0], upstream = grads[0].contiguous();
    const auto input_type = ctx->saved_data["input_type"].toScalarType();
    at::Tensor grad = at::empty(upstream.sizes(), upstream.options().dtype(input_type));
    const uint8_t* kept_base = kept.data_ptr<uint8_t>();
    dispatch_in_out(input_type, upstream.scalar_type(), "keyed_dropout_backward", [&]<typename in_t, typename out_t>() {
      const auto keep = static_cast<out_t>(ctx->saved_data["scale"].toDouble());
      const out_t* in = upstream.data_ptr<out_t>();
      in_t* out = grad.data_ptr<in_t>();
      at::parallel_for(0, grad.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
        scale_kept(in + begin, kept_base + begin, keep, out + begin, end - begin);
      });
    });
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor keyed_mask(const MaskRows& rows, int64_t width, double p, uint32_t site, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return keyed_mask_by_ops(rows, width, p, site, options);
  at::Tensor mask = at::empty({rows.keys.numel(), width}, options.memory_format(at::MemoryFormat::Contiguous));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "keyed_mask", [&] {
    const auto keep = static_cast<scalar_t>(1.0 / (1.0 - p)), drop = static_cast<scalar_t>(0);
    scalar_t* base = mask.data_ptr<scalar_t>();
    for_each_chunk(rows, width, p, site, [&](int64_t r, int64_t c, const uint8_t* k, int64_t n) {
      for (int64_t j = 0; j < n; ++j) base[r * width + c + j] = k[j] ? keep : drop;
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

at::Tensor KeyedDropout::apply(const at::Tensor& x, double p, uint32_t site, const MaskRows& rows,
                               at::ScalarType out_type) const {
  if (x.device().is_cpu()) return CpuKeyedDropout::apply(x, rows, p, site, out_type);
  return x.to(out_type) * keyed_mask(rows, x.size(-1), p, site, x.options().dtype(out_type)).view(x.sizes());
}

at::Tensor KeyedDropout::tokens(const at::Tensor& x, double p, uint32_t site, const at::Tensor& flat,
                                std::optional<at::ScalarType> out_type) const {
  const at::ScalarType type = out_type.value_or(x.scalar_type());
  if (p == 0) return x.to(type);
  ANGLE_CHECK(keys_.defined(), "dropout in training needs one key per text (model/dropout.h)");
  const at::Tensor text = at::div(flat, length_, "floor"), zeros = at::zeros_like(flat);
  return apply(x, p, site, {keys_.index_select(0, text), flat - text * length_ - start_.index_select(0, text), zeros, zeros},
               type);
}

at::Tensor KeyedDropout::padded(const at::Tensor& x, double p, uint32_t site,
                                std::optional<at::ScalarType> out_type) const {
  if (p == 0) return x.to(out_type.value_or(x.scalar_type()));
  return tokens(x, p, site, at::arange(x.numel() / x.size(-1), keys_.defined() ? keys_.options() : x.options().dtype(at::kLong)),
                out_type);
}

at::Tensor KeyedDropout::scores(const at::Tensor& probs, double p, uint32_t site) const {
  if (p == 0) return probs;
  ANGLE_CHECK(keys_.defined(), "dropout in training needs one key per text (model/dropout.h)");
  const int64_t heads = probs.size(1), queries = probs.size(2);
  const at::Tensor row = at::arange(probs.numel() / probs.size(-1), keys_.options());
  const at::Tensor text = at::div(row, heads * queries, "floor"), start = start_.index_select(0, text);
  const at::Tensor head = at::remainder(at::div(row, queries, "floor"), heads), query = at::remainder(row, queries);
  return apply(probs, p, site, {keys_.index_select(0, text), query - start, head, start}, probs.scalar_type());
}

}  // namespace angle::model
