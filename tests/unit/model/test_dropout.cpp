// The fast CPU dropout (model/dropout.h): its Philox block against the published known-answer
// vectors, its mask's distribution, scale and reproducibility, its gradient, and BERT's training
// attention path (the math path with that mask) against the eval path.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "model/dropout.h"
#include "model/encoder.h"
#include "tiny_model.h"

using namespace angle;

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

BOOST_AUTO_TEST_CASE(mask_drops_p_and_scales_the_rest) {
  const int64_t n = 1 << 20;
  for (double p : {0.1, 0.5}) {
    at::Tensor mask = model::dropout_mask(at::empty({n}), p, 12345);
    const double dropped = (mask == 0).sum().item<double>() / n;
    BOOST_TEST(std::abs(dropped - p) < 5 * std::sqrt(p * (1 - p) / n), "p " << p << " dropped " << dropped);
    const auto kept = mask.masked_select(mask != 0);
    BOOST_TEST(at::equal(kept, at::full_like(kept, static_cast<float>(1 / (1 - p)))));
    // Neighbouring elements are independent: P(both dropped) = p^2.
    const double pairs = ((mask.narrow(0, 0, n - 1) == 0) & (mask.narrow(0, 1, n - 1) == 0)).sum().item<double>() / (n - 1);
    BOOST_TEST(std::abs(pairs - p * p) < 5 * std::sqrt(p * p * (1 - p * p) / n), "pairs " << pairs);
  }
  at::Tensor bf16 = model::dropout_mask(at::empty({1000}, at::kBFloat16), 0.5, 1);
  BOOST_TEST(bf16.scalar_type() == at::kBFloat16);
  BOOST_TEST(bf16.max().item<double>() == 2.0);
}

BOOST_AUTO_TEST_CASE(mask_depends_on_the_seed_only) {
  const int threads = at::get_num_threads();
  at::Tensor all_threads = model::dropout_mask(at::empty({100001}), 0.1, 7);
  at::set_num_threads(1);
  at::Tensor one = model::dropout_mask(at::empty({100001}), 0.1, 7);
  at::set_num_threads(threads);
  BOOST_TEST(at::equal(one, all_threads));
  BOOST_TEST(!at::equal(one, model::dropout_mask(at::empty({100001}), 0.1, 8)));
  // dropout() draws its seed from the default generator: the same state gives the same mask.
  at::Tensor x = at::randn({4096});
  at::manual_seed(3);
  at::Tensor first = model::dropout(x, 0.3);
  at::manual_seed(3);
  BOOST_TEST(at::equal(first, model::dropout(x, 0.3)));
  BOOST_TEST(!at::equal(first, model::dropout(x, 0.3)));
  BOOST_TEST(model::dropout(x, 0).is_same(x));
}

BOOST_AUTO_TEST_CASE(gradient_is_the_mask) {
  at::Tensor x = at::randn({64, 32}).requires_grad_();
  at::Tensor y = model::dropout(x, 0.25);
  at::Tensor upstream = at::randn({64, 32});
  y.backward(upstream);
  at::Tensor mask = y.detach() / x.detach();  // x has no zeros
  BOOST_TEST(at::allclose(x.grad(), upstream * mask, 1e-6, 1e-6));
  BOOST_TEST((mask == 0).any().item<bool>());
}

// With p so small that nothing is dropped, training mode takes the math attention path and the
// fast masks; it must give the eval path's (at::scaled_dot_product_attention's) hidden states.
BOOST_AUTO_TEST_CASE(training_attention_path_equals_the_eval_path) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  model::EncoderOptions options;
  options.dropout = 1e-12;
  auto encoder = model::load_encoder(tmp.path.string(), options);
  at::Tensor ids = at::tensor({2, 5, 6, 7, 8, 3, 2, 18, 3, 0, 0, 0}, at::kLong).view({2, 6});
  at::Tensor mask = (ids != 0).to(at::kLong);
  at::Tensor eval = encoder.model->forward(ids, mask);
  encoder.model->train(true);
  at::Tensor train = encoder.model->forward(ids, mask);
  at::Tensor valid = mask.unsqueeze(-1).to(at::kBool).expand_as(eval);
  BOOST_TEST(at::allclose(train.masked_select(valid), eval.masked_select(valid), 1e-5, 1e-6));
  // Under bf16 autocast the training path computes attention in fp32 as SDPA's math path does:
  // it stays within bf16 rounding of the eval path under the same autocast.
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::Tensor train_bf16 = encoder.model->forward(ids, mask);
  encoder.model->train(false);
  at::Tensor eval_bf16 = encoder.model->forward(ids, mask);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  const double gap = (train_bf16.to(at::kFloat) - eval_bf16.to(at::kFloat)).abs().masked_select(valid).max().item<double>();
  BOOST_TEST(gap < 0.05, "bf16 training vs eval path: " << gap);
  BOOST_TEST(at::isfinite(train_bf16).all().item<bool>());
  // And with real dropout the training output differs, reproducibly from the generator state.
  options.dropout = 0.2;
  auto dropping = model::load_encoder(tmp.path.string(), options);
  dropping.model->train(true);
  at::manual_seed(11);
  at::Tensor a = dropping.model->forward(ids, mask);
  at::manual_seed(11);
  at::Tensor b = dropping.model->forward(ids, mask);
  BOOST_TEST(at::equal(a, b));
  BOOST_TEST(!at::allclose(a.masked_select(valid), eval.masked_select(valid), 1e-3, 1e-3));
}

BOOST_AUTO_TEST_SUITE_END()
