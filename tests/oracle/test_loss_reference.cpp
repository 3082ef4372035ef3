// Golden test of the AnglE objective against angle-emb v0.6.1: make_loss_reference.py stores
// loss values and d(loss)/d(embeddings) for 288 cases; ours must match each to 1e-5 relative.
//   angle_loss_golden -- --reference FILE.safetensors
#define BOOST_TEST_MODULE angle_loss_golden
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "loss/angle_loss.h"
#include "model/safetensors.h"
#include "reference_file.h"

using namespace angle;

namespace {

loss::Weights weights_of(const nlohmann::json& c) {
  const auto& j = c["weights"];
  loss::Weights w;
  w.cosine_w = j["cosine_w"], w.ibn_w = j["ibn_w"], w.cln_w = j["cln_w"], w.angle_w = j["angle_w"];
  w.cosine_tau = j["cosine_tau"], w.ibn_tau = j["ibn_tau"], w.angle_tau = j["angle_tau"];
  w.label_mode = loss::parse_label_mode(c["label_mode"]);
  return w;
}

}  // namespace

BOOST_AUTO_TEST_CASE(presets_match_the_reference_table) {
  model::SafetensorsFile file(oracle::argument("--reference"));
  for (const auto& c : nlohmann::json::parse(file.metadata().at("cases"))) {
    std::string preset = c["preset"];
    if (preset == "stsb-recipe") continue;  // explicit weights, not a named preset
    loss::Weights expected = weights_of(c), named = loss::Weights::preset(preset);
    BOOST_TEST_REQUIRE(named.cosine_w == expected.cosine_w);
    BOOST_TEST_REQUIRE(named.ibn_w == expected.ibn_w);
    BOOST_TEST_REQUIRE(named.cln_w == expected.cln_w);
    BOOST_TEST_REQUIRE(named.angle_w == expected.angle_w);
    BOOST_TEST_REQUIRE(named.angle_tau == expected.angle_tau);
    BOOST_TEST_REQUIRE(named.cosine_tau == expected.cosine_tau);
    BOOST_TEST_REQUIRE(named.ibn_tau == expected.ibn_tau);
  }
}

BOOST_AUTO_TEST_CASE(loss_and_gradient_equal_angle_emb) {
  model::SafetensorsFile file(oracle::argument("--reference"));
  auto cases = nlohmann::json::parse(file.metadata().at("cases"));
  BOOST_TEST_REQUIRE(cases.size() >= 200u);
  double worst_loss = 0, worst_grad = 0;
  for (const auto& c : cases) {
    std::string name = c["name"];
    at::Tensor embeddings = file.load(name + ".embeddings").requires_grad_(true);
    at::Tensor labels = file.load(name + ".labels");
    // Unweighted, and with every example weight 1 (the weighted code path must reduce to the reference).
    for (bool weighted : {false, true}) {
      if (embeddings.grad().defined()) embeddings.mutable_grad().zero_();
      at::Tensor ones = weighted ? at::ones({int64_t(c["batch"])}, at::kDouble) : at::Tensor();
      auto value = loss::angle_objective(loss::parse_format(c["format"]), weights_of(c), labels, embeddings, ones);
      at::Tensor grad = at::zeros_like(embeddings);
      if (value.total.requires_grad()) {
        value.total.backward();
        grad = embeddings.grad();
      }
      double loss_error = oracle::relative_error(value.total.detach().reshape({1}), file.load(name + ".loss"));
      double grad_error = oracle::relative_error(grad, file.load(name + ".grad"));
      worst_loss = std::max(worst_loss, loss_error);
      worst_grad = std::max(worst_grad, grad_error);
      BOOST_TEST(loss_error <= 1e-5, c.dump() << (weighted ? " (weights 1)" : "") << ": loss " << value.total.item<double>()
                                              << " vs " << file.load(name + ".loss").item<double>());
      BOOST_TEST(grad_error <= 1e-5, c.dump() << (weighted ? " (weights 1)" : "") << ": gradient relative error " << grad_error);
    }
  }
  BOOST_TEST_MESSAGE(cases.size() << " cases: worst relative error of the loss " << worst_loss << ", of the gradient "
                                  << worst_grad);
}
