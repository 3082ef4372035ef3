// ckpt/generator_states.h: a CPU run's shard carries "rng" alone; restoring it makes the generator
// draw again what it drew after the save.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "ckpt/generator_states.h"

using namespace angle;

BOOST_AUTO_TEST_CASE(cpu_generator_state_round_trip) {
  at::manual_seed(3);
  const auto saved = ckpt::generator_states(at::kCPU);
  BOOST_TEST(saved.size() == 1u);
  BOOST_TEST(saved.count("rng") == 1u);
  const at::Tensor after_save = at::rand({5});
  (void)at::rand({100});
  ckpt::restore_generator_states(saved, at::kCPU);
  BOOST_TEST(at::equal(at::rand({5}), after_save));
  // a GPU state in a checkpoint resumed on the CPU is left alone; the CPU one still applies
  auto with_gpu = saved;
  with_gpu["rng_cuda"] = at::zeros({16}, at::kByte);
  (void)at::rand({7});
  ckpt::restore_generator_states(with_gpu, at::kCPU);
  BOOST_TEST(at::equal(at::rand({5}), after_save));
}
