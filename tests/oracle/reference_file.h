// What the golden oracle tests share: their command-line arguments (after "--"), the UTF-8 texts
// that the Python script stored in the reference file (text_bytes + text_offsets), and the error
// measure of the loss tests.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace angle::oracle {

inline std::string argument(const std::string& flag) {
  auto& suite = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i + 1 < suite.argc; ++i)
    if (flag == suite.argv[i]) return suite.argv[i + 1];
  BOOST_FAIL("missing argument " + flag);
  return "";
}

inline std::vector<std::string> stored_texts(const model::SafetensorsFile& file) {
  at::Tensor bytes = file.load("text_bytes"), offsets = file.load("text_offsets");
  std::vector<std::string> out;
  const char* data = reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>());
  for (int64_t i = 0; i + 1 < offsets.numel(); ++i)
    out.emplace_back(data + offsets[i].item<int64_t>(), data + offsets[i + 1].item<int64_t>());
  return out;
}

// max |ours − theirs| / max |theirs|: relative to the reference's scale, not element by element.
inline double relative_error(const at::Tensor& ours, const at::Tensor& theirs) {
  const double scale = std::max(theirs.abs().max().item<double>(), 1e-12);
  return (ours - theirs).abs().max().item<double>() / scale;
}

}  // namespace angle::oracle
