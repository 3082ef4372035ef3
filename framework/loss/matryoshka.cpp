#include "loss/matryoshka.h"

#include <ATen/ATen.h>

#include <sstream>

#include "core/error.h"

namespace angle::loss {
namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

template <typename T>
T parse_number(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  T value{};
  in >> value;
  ANGLE_CHECK(!text.empty() && in && in.peek() == std::char_traits<char>::eof(), what, ": '", text, "' is not a",
              std::is_integral_v<T> ? "n integer" : " number");
  return value;
}

}  // namespace

Matryoshka parse_matryoshka(const std::string& dims, const std::string& weights, const std::string& what) {
  Matryoshka m;
  if (dims.empty()) {
    ANGLE_CHECK(weights.empty(), what, "_weights given without ", what, "_dims");
    return m;
  }
  for (const std::string& part : split_commas(dims)) {
    const auto d = parse_number<int64_t>(part, what + "_dims");
    ANGLE_CHECK(d > 0, what, "_dims: ", d, " is not a positive size");
    ANGLE_CHECK(m.dims.empty() || d < m.dims.back(), what, "_dims '", dims,
                "': must be strictly decreasing (largest first, e.g. 384,128,64)");
    m.dims.push_back(d);
  }
  if (weights.empty()) {
    m.weights.assign(m.dims.size(), 1.0);
    return m;
  }
  for (const std::string& part : split_commas(weights)) {
    const auto w = parse_number<double>(part, what + "_weights");
    ANGLE_CHECK(w >= 0, what, "_weights: ", w, " is negative");
    m.weights.push_back(w);
  }
  ANGLE_CHECK(m.weights.size() == m.dims.size(), what, "_weights: ", m.weights.size(), " weights for ", m.dims.size(),
              " sizes in ", what, "_dims");
  return m;
}

void check_matryoshka(const Matryoshka& m, int64_t width, bool even_dims, const std::string& what) {
  for (int64_t d : m.dims) {
    ANGLE_CHECK(d <= width, what, "_dims: ", d, " is above the embedding size ", width);
    ANGLE_CHECK(!even_dims || d % 2 == 0, what, "_dims: ", d, " is odd; the angle term splits an embedding into "
                "real and imaginary halves (set loss.angle_w 0 or use even dims)");
  }
}

LossValue matryoshka_objective(const Matryoshka& m, const at::Tensor& embeddings, const Objective& objective) {
  if (!m.enabled()) return objective(embeddings);
  const int64_t width = embeddings.size(1);
  check_matryoshka(m, width, false, "loss.matryoshka");
  LossValue out;
  out.total = at::zeros({}, embeddings.options());
  for (size_t i = 0; i < m.dims.size(); ++i) {
    const int64_t d = m.dims[i];
    at::Tensor cut = embeddings.narrow(1, 0, d);
    cut = cut / cut.norm(2, 1, true).clamp_min(1e-12);  // F.normalize's eps
    LossValue value = objective(cut);
    out.total = out.total + m.weights[i] * value.total;
    const std::string suffix = d == width ? std::string() : std::string("@").append(std::to_string(d));
    for (const auto& [name, term] : value.terms) out.terms[name + suffix] = term;
  }
  return out;
}

}  // namespace angle::loss
