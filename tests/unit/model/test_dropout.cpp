// Keyed dropout (model/dropout.h): its Philox block against the published known-answer vectors,
// the CPU loop against the ATen-ops path (the CUDA path), the mask's distribution, scale and
// thread independence, its gradient; and the property the trainer relies on: a text's masks, so
// its training output, depend on its key alone, not on the other texts of the batch, its padding,
// packing or position in the batch (BERT packed and dense, a decoder with LoRA and attention
// dropout), while another key gives other masks.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "model/decoder.h"
#include "model/dropout.h"
#include "model/encoder.h"
#include "tiny_model.h"

using namespace angle;

namespace {

// Rows of R texts with arbitrary keys (negative bit patterns included), positions (negative:
// padding), heads and left padding.
model::MaskRows some_rows(int64_t count, int64_t width) {
  at::manual_seed(5);
  return {at::randint(INT64_MIN, INT64_MAX, {count}, at::kLong), at::randint(-3, 40, {count}, at::kLong),
          at::randint(0, 12, {count}, at::kLong), at::randint(0, width + 1, {count}, at::kLong)};
}

// Right-padded ids [B, T] of the token rows, and their mask.
std::pair<at::Tensor, at::Tensor> pad_right(const std::vector<std::vector<int64_t>>& rows, int64_t length) {
  at::Tensor ids = at::zeros({static_cast<int64_t>(rows.size()), length}, at::kLong), mask = at::zeros_like(ids);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t t = 0; t < rows[r].size(); ++t) ids[r][t] = rows[r][t], mask[r][t] = 1;
  return {ids, mask};
}

// Text r's hidden states at its real positions when encoded in a batch of `rows` with `keys`.
at::Tensor text_states(const model::Backbone& m, const std::vector<std::vector<int64_t>>& rows,
                       const std::vector<int64_t>& keys, size_t r, int64_t length) {
  auto [ids, mask] = pad_right(rows, length);
  return m.forward(ids, mask, nullptr, at::tensor(keys)).select(0, static_cast<int64_t>(r)).narrow(
      0, 0, static_cast<int64_t>(rows[r].size()));
}

// Encoded with others (longer, shorter), reordered, with extra padding, and alone: the same states;
// another key: other states.
void check_text_independence(const model::Backbone& m, const std::string& what) {
  const std::vector<int64_t> a{2, 7, 9, 11, 3}, b{2, 5, 3}, c{2, 6, 8, 10, 12, 14, 16, 3};
  const at::Tensor alone = text_states(m, {a}, {41}, 0, 5);
  const at::Tensor in_batch = text_states(m, {b, a, c}, {7, 41, 9}, 1, 8);
  const at::Tensor reordered = text_states(m, {a, c, b}, {41, 9, 7}, 0, 12);
  BOOST_TEST(at::allclose(alone, in_batch, 1e-5, 1e-6), what << ": alone vs in a batch "
                                                              << (alone - in_batch).abs().max().item<double>());
  BOOST_TEST(at::allclose(alone, reordered, 1e-5, 1e-6), what << ": alone vs reordered and padded");
  BOOST_TEST(!at::allclose(alone, text_states(m, {a}, {42}, 0, 5), 1e-3, 1e-3), what << ": another key");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dropout)

// Random123's kat_vectors for philox4x32_10 (Salmon et al., SC'11).
BOOST_AUTO_TEST_CASE(philox_matches_the_known_answer_vectors) {
  using Block = std::array<uint32_t, 4>;
  BOOST_TEST((model::philox4x32({0, 0, 0, 0}, {0, 0}) == Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  BOOST_TEST((model::philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
              Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  BOOST_TEST((model::philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
              Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// The CPU loop and the integer-op path (what CUDA runs) give the same mask, bit for bit, and the
// first element of a row is the first word of Philox(counter {0, position, site, head}, key).
BOOST_AUTO_TEST_CASE(cpu_loop_equals_the_ops_path) {
  for (int64_t width : {1, 7, 64, 130}) {
    const model::MaskRows rows = some_rows(300, width);
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      const at::Tensor loop = model::keyed_mask(rows, width, 0.3, 17, at::TensorOptions(dtype));
      const at::Tensor ops = model::keyed_mask_by_ops(rows, width, 0.3, 17, at::TensorOptions(dtype));
      BOOST_TEST(at::equal(loop, ops), "width " << width);
    }
  }
  const model::MaskRows one{at::tensor({int64_t{-2}}), at::tensor({int64_t{9}}), at::tensor({int64_t{3}}),
                            at::tensor({int64_t{0}})};
  const auto bits = model::philox4x32({0, 9, 5, 3}, {0xfffffffe, 0xffffffff});
  const at::Tensor mask = model::keyed_mask(one, 4, 0.5, 5, at::TensorOptions(at::kFloat));
  for (int j = 0; j < 4; ++j) BOOST_TEST((mask[0][j].item<float>() != 0) == (bits[j] >= 0x80000000u));
}

BOOST_AUTO_TEST_CASE(mask_drops_p_and_scales_the_rest) {
  const int64_t rows = 1024, width = 1024, n = rows * width;
  const model::MaskRows r = some_rows(rows, 0);  // col_start 0
  for (double p : {0.1, 0.5}) {
    at::Tensor mask = model::keyed_mask(r, width, p, 3, at::TensorOptions(at::kFloat)).flatten();
    const double dropped = (mask == 0).sum().item<double>() / n;
    BOOST_TEST(std::abs(dropped - p) < 5 * std::sqrt(p * (1 - p) / n), "p " << p << " dropped " << dropped);
    const auto kept = mask.masked_select(mask != 0);
    BOOST_TEST(at::equal(kept, at::full_like(kept, static_cast<float>(1 / (1 - p)))));
    // Neighbouring elements are independent: P(both dropped) = p^2.
    const double pairs = ((mask.narrow(0, 0, n - 1) == 0) & (mask.narrow(0, 1, n - 1) == 0)).sum().item<double>() / (n - 1);
    BOOST_TEST(std::abs(pairs - p * p) < 5 * std::sqrt(p * p * (1 - p * p) / n), "pairs " << pairs);
  }
}

BOOST_AUTO_TEST_CASE(mask_depends_on_rows_and_site_not_threads) {
  const model::MaskRows rows = some_rows(4001, 33);
  const int threads = at::get_num_threads();
  at::Tensor all_threads = model::keyed_mask(rows, 33, 0.1, 2, at::TensorOptions(at::kFloat));
  at::set_num_threads(1);
  at::Tensor one = model::keyed_mask(rows, 33, 0.1, 2, at::TensorOptions(at::kFloat));
  at::set_num_threads(threads);
  BOOST_TEST(at::equal(one, all_threads));
  BOOST_TEST(!at::equal(one, model::keyed_mask(rows, 33, 0.1, 3, at::TensorOptions(at::kFloat))));
  // Left padding shifts a text's elements, not its mask.
  model::MaskRows shifted = rows;
  shifted.col_start = rows.col_start.clamp_max(20) + 5;
  model::MaskRows unshifted = rows;
  unshifted.col_start = shifted.col_start - 5;
  const at::Tensor a = model::keyed_mask(shifted, 33, 0.4, 2, at::TensorOptions(at::kFloat));
  const at::Tensor b = model::keyed_mask(unshifted, 33, 0.4, 2, at::TensorOptions(at::kFloat));
  for (int64_t r = 0; r < 50; ++r) {
    const int64_t s = unshifted.col_start[r].item<int64_t>();
    BOOST_TEST(at::equal(a[r].narrow(0, s + 5, 28 - s), b[r].narrow(0, s, 28 - s)), "row " << r);
  }
}

BOOST_AUTO_TEST_CASE(gradient_is_the_mask) {
  const at::Tensor mask = at::ones({4, 16}, at::kLong);
  const model::KeyedDropout keyed(at::tensor(std::vector<int64_t>{1, 2, 3, 4}), mask);
  at::Tensor x = at::randn({4, 16, 32}).requires_grad_();
  at::Tensor y = keyed.padded(x, 0.25, 0);
  at::Tensor upstream = at::randn({4, 16, 32});
  y.backward(upstream);
  at::Tensor m = y.detach() / x.detach();  // x has no zeros
  BOOST_TEST(at::allclose(x.grad(), upstream * m, 1e-6, 1e-6));
  BOOST_TEST((m == 0).any().item<bool>());
  BOOST_TEST(keyed.padded(x, 0, 0).is_same(x));
  const std::string error = testing::error_of([&] { model::KeyedDropout().padded(x, 0.1, 0); });
  BOOST_TEST(error.find("needs one key per text") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(philox_blocks_equal_philox) {
  const auto functions = model::philox_block_functions();
  BOOST_TEST(functions.back().first == "scalar");
  for (const auto& [name, blocks] : functions)
    for (const uint32_t first : {0u, 1000u, 0xfffffff8u}) {  // the last wraps around 2^32
      uint32_t words[4][model::kPhiloxBlocks];
      blocks(first, 17, 0xdeadbeef, 3, 0x12345678, 0x9abcdef0, words);
      for (int i = 0; i < model::kPhiloxBlocks; ++i) {
        const auto block = model::philox4x32({first + static_cast<uint32_t>(i), 17, 0xdeadbeef, 3}, {0x12345678, 0x9abcdef0});
        for (int w = 0; w < 4; ++w) BOOST_TEST(words[w][i] == block[w], name << " block " << i << " word " << w);
      }
    }
}

// The CPU's one-pass dropout (a byte per element kept for backward; Philox 16 blocks at a time, in
// this CPU's vector width) against the product with the ops path's mask, bitwise, forward and
// backward, in fp32 and bf16, with left padding, widths within one 64-element chunk and over several;
// and with a float output for a bf16 input (a LoRA adapter's input) against the cast, then the product.
BOOST_AUTO_TEST_CASE(cpu_one_pass_equals_the_mask_product) {
  const at::Tensor mask = at::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, at::kLong).view({2, 6});
  const at::Tensor keys = at::tensor(std::vector<int64_t>{-7, 1234567890123LL});
  const model::KeyedDropout keyed(keys, mask);
  struct Case {
    at::ScalarType in, out;
    int64_t width;
  };
  for (const auto& [in, out, width] : {Case{at::kFloat, at::kFloat, 40}, Case{at::kFloat, at::kFloat, 203},
                                       Case{at::kBFloat16, at::kBFloat16, 130}, Case{at::kBFloat16, at::kFloat, 77}}) {
    at::Tensor x = at::randn({2, 6, width}).to(in).requires_grad_();
    at::Tensor y = keyed.padded(x, 0.3, 9, out);
    BOOST_TEST(y.scalar_type() == out);
    const at::Tensor upstream = at::randn({2, 6, width}).to(out);
    y.backward(upstream);
    // The same rows as padded() builds: every position of the layout, its text's key and start.
    const at::Tensor flat = at::arange(12, at::kLong), text = at::div(flat, 6, "floor"), start = (mask.cumsum(1) == 0).sum(1);
    const model::MaskRows rows{keys.index_select(0, text), flat - text * 6 - start.index_select(0, text),
                               at::zeros_like(flat), at::zeros_like(flat)};
    const at::Tensor by_ops = model::keyed_mask_by_ops(rows, width, 0.3, 9, x.options().dtype(out)).view({2, 6, width});
    BOOST_TEST(at::equal(y.detach(), x.detach().to(out) * by_ops), "forward, " << in << " -> " << out);
    BOOST_TEST(at::equal(x.grad(), (upstream * by_ops).to(in)), "backward, " << in << " -> " << out);
  }
  const at::Tensor x = at::randn({2, 6, 8});
  BOOST_TEST(keyed.padded(x, 0, 9, at::kBFloat16).equal(x.to(at::kBFloat16)));  // no dropout: only the cast
  const std::string error = testing::error_of([&] { keyed.padded(x, 0.3, 9, at::kBFloat16); });
  BOOST_TEST(error.find("output type BFloat16 for input Float") != std::string::npos, error);
}

// With p so small that nothing is dropped, training mode takes the math attention path and the
// keyed masks; it must give the eval path's (at::scaled_dot_product_attention's) hidden states.
BOOST_AUTO_TEST_CASE(training_attention_path_equals_the_eval_path) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  model::EncoderOptions options;
  options.dropout = 1e-12;
  auto encoder = model::load_encoder(tmp.path.string(), options);
  at::Tensor ids = at::tensor({2, 5, 6, 7, 8, 3, 2, 18, 3, 0, 0, 0}, at::kLong).view({2, 6});
  at::Tensor mask = (ids != 0).to(at::kLong), keys = at::tensor(std::vector<int64_t>{1, 2});
  at::Tensor eval = encoder.model->forward(ids, mask);
  encoder.model->train(true);
  at::Tensor train = encoder.model->forward(ids, mask, nullptr, keys);
  at::Tensor valid = mask.unsqueeze(-1).to(at::kBool).expand_as(eval);
  BOOST_TEST(at::allclose(train.masked_select(valid), eval.masked_select(valid), 1e-5, 1e-6));
  // Under bf16 autocast the training path computes attention in fp32 as SDPA's math path does:
  // it stays within bf16 rounding of the eval path under the same autocast.
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::Tensor train_bf16 = encoder.model->forward(ids, mask, nullptr, keys);
  encoder.model->train(false);
  at::Tensor eval_bf16 = encoder.model->forward(ids, mask);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  const double gap = (train_bf16.to(at::kFloat) - eval_bf16.to(at::kFloat)).abs().masked_select(valid).max().item<double>();
  BOOST_TEST(gap < 0.05, "bf16 training vs eval path: " << gap);
  BOOST_TEST(at::isfinite(train_bf16).all().item<bool>());
}

BOOST_AUTO_TEST_CASE(bert_text_output_depends_on_its_key_only) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  model::EncoderOptions options;
  options.dropout = 0.2;
  auto encoder = model::load_encoder(tmp.path.string(), options);
  encoder.model->train(true);
  c10::NoGradGuard no_grad;
  // Short batches run packed, the reordered batch padded to 12 too; a batch of equal lengths runs dense.
  check_text_independence(*encoder.model, "BERT");
  const std::vector<int64_t> a{2, 7, 9, 11, 3};
  BOOST_TEST(at::allclose(text_states(*encoder.model, {a, a, a}, {41, 1, 2}, 0, 5),
                          text_states(*encoder.model, {a}, {41}, 0, 5), 1e-5, 1e-6), "dense vs packed");
  const std::string error = testing::error_of([&] { text_states(*encoder.model, {a}, {}, 0, 5); });
  BOOST_TEST(error.find("dropout keys: 0 for a batch of 1") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(decoder_text_output_depends_on_its_key_only) {
  model::DecoderConfig c;
  c.model_type = "llama", c.vocab_size = 32, c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 2, c.num_key_value_heads = 1, c.head_dim = 8, c.max_position_embeddings = 32;
  c.attention_dropout = 0.2, c.source = "test";
  model::LoraConfig lora;
  lora.r = 4, lora.alpha = 8, lora.dropout = 0.3, lora.target_modules = model::LoraConfig::all_projections();
  model::DecoderModel m(c, lora);
  c10::NoGradGuard no_grad;
  at::manual_seed(2);
  for (auto& [name, p] : m.named_parameters()) p.copy_(at::randn(p.sizes()) * 0.3);  // B != 0: adapters count
  m.train(true);
  check_text_independence(m, "decoder");
}

BOOST_AUTO_TEST_SUITE_END()
