// Golden test of loss.matryoshka_dims against sentence-transformers' MatryoshkaLoss around CoSENTLoss
// (format A) and MultipleNegativesRankingLoss (formats B and C): make_matryoshka_reference.py stores
// loss values and d(loss)/d(embeddings); ours (the AnglE objective with only the matching term on)
// must match each to 1e-5 relative.
//   angle_matryoshka_golden -- --reference FILE.safetensors
#define BOOST_TEST_MODULE angle_matryoshka_golden
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "loss/matryoshka.h"
#include "model/safetensors.h"
#include "reference_file.h"

using namespace angle;

namespace {

// CoSENT = the cosine term alone (τ 20); MNRL = the contrastive term alone: format B's is the only
// term, and format C's hard-negative term counts half (AnglE's (ibn + cln) / 2), so cln_w 2.
loss::Weights inner_loss(const std::string& format) {
  loss::Weights w;
  w.cosine_w = format == "A" ? 1.0 : 0.0;
  w.ibn_w = 0.0, w.angle_w = 0.0;
  w.cln_w = format == "C" ? 2.0 : 0.0;
  return w;
}

}  // namespace

BOOST_AUTO_TEST_CASE(loss_and_gradient_equal_sentence_transformers) {
  model::SafetensorsFile file(oracle::argument("--reference"));
  auto cases = nlohmann::json::parse(file.metadata().at("cases"));
  BOOST_TEST_REQUIRE(cases.size() >= 6u);
  for (const auto& c : cases) {
    const std::string name = c["name"], format = c["format"];
    at::Tensor embeddings = file.load(name + ".embeddings").requires_grad_(true);
    at::Tensor labels = file.load(name + ".labels");
    std::string dims, weights;
    for (size_t i = 0; i < c["dims"].size(); ++i) {
      dims += (i ? "," : "") + std::to_string(int64_t(c["dims"][i]));
      weights += (i ? "," : "") + std::to_string(double(c["weights"][i]));
    }
    const loss::Matryoshka m = loss::parse_matryoshka(dims, weights, "loss.matryoshka");
    const loss::Weights w = inner_loss(format);
    auto value = loss::matryoshka_objective(m, embeddings, [&](const at::Tensor& cut) {
      return loss::angle_objective(loss::parse_format(format), w, labels, cut);
    });
    value.total.backward();
    const double loss_error = oracle::relative_error(value.total.detach().reshape({1}), file.load(name + ".loss"));
    const double grad_error = oracle::relative_error(embeddings.grad(), file.load(name + ".grad"));
    BOOST_TEST(loss_error <= 1e-5, c.dump() << ": loss " << value.total.item<double>() << " vs "
                                            << file.load(name + ".loss").item<double>());
    BOOST_TEST(grad_error <= 1e-5, c.dump() << ": gradient off by " << grad_error << " (relative)");
    BOOST_TEST_MESSAGE(name << " " << format << " dims " << dims << ": loss error " << loss_error << ", gradient error "
                            << grad_error);
    // Each size's terms are reported apart: "cosine@8", plain "cosine" for the whole width.
    for (int64_t d : m.dims) {
      const std::string term = format == "A" ? "cosine" : format == "B" ? "contrastive" : "cln";
      const std::string key = d == embeddings.size(1) ? term : term + "@" + std::to_string(d);
      BOOST_TEST(value.terms.count(key) == 1u, name << ": no term " << key);
    }
  }
}

BOOST_AUTO_TEST_CASE(off_is_the_plain_objective) {
  at::Tensor e = at::randn({8, 6}, at::kDouble), labels = at::rand({4}, at::kDouble);
  loss::Weights w;
  auto plain = loss::angle_objective(loss::Format::A, w, labels, e);
  auto off = loss::matryoshka_objective({}, e, [&](const at::Tensor& x) { return loss::angle_objective(loss::Format::A, w, labels, x); });
  BOOST_TEST(plain.total.item<double>() == off.total.item<double>());
}
