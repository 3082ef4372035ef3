// The planner's shapes from config.json alone against the real model built from the same config:
// every unit's name and parameter sizes (in named_parameters() order), the total, and the
// matrix-product weights the FLOP count uses.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>

#include "model/bert.h"
#include "model/model_shape.h"
#include "tiny_model.h"

using namespace angle;

BOOST_AUTO_TEST_SUITE(model_shape)

BOOST_AUTO_TEST_CASE(units_and_sizes_equal_the_model_built_from_the_config) {
  testing::TempDir dir;
  auto json = testing::tiny_config_json();
  json["intermediate_size"] = 48;  // not 4 x hidden, to tell the two apart
  testing::write_text(dir.file("config.json"), json.dump());
  const model::BertConfig config = model::BertConfig::from_file(dir.file("config.json"));
  const model::BertModel model(config);
  const model::ModelShape shape = model::bert_shape(config);
  const auto named = model.named_parameters();
  const auto units = model.units();
  BOOST_TEST_REQUIRE(shape.units.size() == units.size());
  int64_t total = 0, matmul = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    BOOST_TEST(shape.units[u].name == units[u].name);
    BOOST_TEST(shape.units[u].sparse == units[u].sparse_grad);
    BOOST_TEST(shape.units[u].backward_reads_params == units[u].backward_reads_params);
    BOOST_TEST_REQUIRE(shape.units[u].param_numels.size() == units[u].params.size());
    for (size_t i = 0; i < units[u].params.size(); ++i)
      BOOST_TEST(shape.units[u].param_numels[i] == named[units[u].params[i]].second.numel(), units[u].name << " " << i);
  }
  for (const auto& [name, p] : named) {
    total += p.numel();
    if (name.starts_with("encoder.layer.") && p.dim() == 2) matmul += p.numel();
  }
  BOOST_TEST(shape.numel() == total);
  BOOST_TEST(shape.matmul_weights() == matmul);
}

BOOST_AUTO_TEST_SUITE_END()
