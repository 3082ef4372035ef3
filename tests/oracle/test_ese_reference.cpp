// Golden test of loss.ese (Espresso) against angle-emb v0.6.1's AngleESETrainer.compute_loss:
// make_ese_reference.py stores loss values and d(loss)/d(hidden states) (exact SVD in place of
// svd_lowrank); ours must match each to 1e-5 relative.
//   angle_ese_golden -- --reference FILE.safetensors
#define BOOST_TEST_MODULE angle_ese_golden
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "loss/espresso.h"
#include "model/safetensors.h"
#include "reference_file.h"

using namespace angle;

BOOST_AUTO_TEST_CASE(loss_and_gradient_equal_angle_emb) {
  model::SafetensorsFile file(oracle::argument("--reference"));
  auto cases = nlohmann::json::parse(file.metadata().at("cases"));
  BOOST_TEST_REQUIRE(cases.size() >= 7u);
  for (const auto& c : cases) {
    const std::string name = c["name"];
    const at::Tensor states = file.load(name + ".states");  // [L + 1, rows, H]
    const int64_t rows = states.size(1), hidden = states.size(2);
    // Ours takes each row's hidden states side by side, as train/encode.cpp concatenates them.
    at::Tensor side_by_side = states.permute({1, 0, 2}).reshape({rows, -1}).contiguous().requires_grad_(true);
    loss::Weights w;
    const auto& j = c["weights"];
    w.cosine_w = j["cosine_w"], w.ibn_w = j["ibn_w"], w.cln_w = j["cln_w"], w.angle_w = j["angle_w"];
    w.cosine_tau = j["cosine_tau"], w.ibn_tau = j["ibn_tau"], w.angle_tau = j["angle_tau"];
    loss::Espresso e{true, int64_t(c["k"]), double(c["kl_temperature"]), bool(c["pca"])};
    const at::Tensor labels = file.load(name + ".labels");
    const loss::Format format = loss::parse_format(c["format"]);
    auto value = loss::espresso_objective(e, side_by_side, hidden, [&](const at::Tensor& x) {
      return loss::angle_objective(format, w, labels, x);
    });
    value.total.backward();
    at::Tensor grad = side_by_side.grad().view({rows, -1, hidden}).permute({1, 0, 2});
    const double loss_error = oracle::relative_error(value.total.detach().reshape({1}), file.load(name + ".loss"));
    const double grad_error = oracle::relative_error(grad, file.load(name + ".grad"));
    BOOST_TEST(loss_error <= 1e-5, c.dump() << ": loss " << value.total.item<double>() << " vs "
                                            << file.load(name + ".loss").item<double>());
    BOOST_TEST(grad_error <= 1e-5, c.dump() << ": gradient off by " << grad_error << " (relative)");
    BOOST_TEST_MESSAGE(name << " format " << c["format"].get<std::string>() << " L=" << c["layers"] << " k=" << c["k"]
                            << ": loss error " << loss_error << ", gradient error " << grad_error);
  }
}
