// plan/activation_plan's per-layer formulas against the bytes PyTorch's saved-tensor hooks count
// for the same operations (tests/oracle/make_activation_reference.py). BERT: packed and dense
// batches, with and without dropout, two model widths; the formula leaves out the per-row
// LayerNorm statistics, the attention's log-sum-exp and mask, the index tensor: within 1%.
// Decoders: three widths (grouped-query or not), full fine-tuning and LoRA on several target sets,
// with and without adapter dropout: exact.
#define BOOST_TEST_MODULE activation_reference
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "plan/activation_plan.h"

using namespace angle;

BOOST_AUTO_TEST_CASE(layer_activations_match_saved_tensor_hooks) {
  const auto& args = boost::unit_test::framework::master_test_suite();
  BOOST_REQUIRE_MESSAGE(args.argc == 3 && std::string(args.argv[1]) == "--reference", "usage: -- --reference FILE.json");
  const nlohmann::json cases = read_json_file(args.argv[2]);
  BOOST_REQUIRE(cases.size() >= 10);
  int decoders = 0;
  for (const auto& c : cases) {
    if (c["kind"] == "decoder") {
      model::ModelShape shape;
      shape.decoder = true, shape.hidden = c["hidden"], shape.intermediate = c["intermediate"], shape.heads = c["heads"];
      shape.kv_heads = c["kv_heads"], shape.head_dim = c["head_dim"], shape.lora_rank = c["lora_r"], shape.layers = 1;
      shape.adapted = c["targets"].get<std::vector<std::string>>();
      plan::ForwardShape f{c["rows"], c["longest"], 0, false, c["adapter_dropout"]};
      BOOST_TEST_INFO(c.dump());
      BOOST_TEST(plan::decoder_layer_activation_bytes(shape, f) == c["saved_bytes"].get<int64_t>());
      ++decoders;
      continue;
    }
    model::ModelShape shape;
    shape.hidden = c["hidden"], shape.intermediate = c["intermediate"], shape.heads = c["heads"], shape.layers = 1;
    const plan::ForwardShape f{c["rows"], c["longest"], c["tokens"], c["dropout"]};
    const double ours = static_cast<double>(plan::layer_activation_bytes(shape, f)), theirs = c["saved_bytes"];
    BOOST_TEST_INFO(c.dump());
    BOOST_TEST(std::abs(ours - theirs) / theirs <= 0.01);
  }
  BOOST_TEST(decoders >= 30);
}
