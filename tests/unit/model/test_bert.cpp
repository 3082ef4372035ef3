// The encoder against a second, naive implementation written here from the BERT equations,
// plus padding invariance and every model-loading error.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "model/encoder.h"
#include "model/safetensors.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;

namespace {

// Plain-ATen BERT: explicit softmax attention with an additive -inf mask, erf GELU.
at::Tensor naive_bert(const model::SafetensorsFile& w, const model::BertConfig& c, const at::Tensor& ids,
                      const at::Tensor& mask) {
  auto W = [&](const std::string& name) { return w.load(name); };
  auto linear = [&](const at::Tensor& x, const std::string& p) { return at::matmul(x, W(p + ".weight").t()) + W(p + ".bias"); };
  auto norm = [&](const at::Tensor& x, const std::string& p) {
    at::Tensor mean = x.mean(-1, true), var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / at::sqrt(var + c.layer_norm_eps) * W(p + ".weight") + W(p + ".bias");
  };
  const int64_t B = ids.size(0), T = ids.size(1), H = c.hidden_size, heads = c.num_attention_heads, d = H / heads;
  at::Tensor x = W("embeddings.word_embeddings.weight").index_select(0, ids.flatten()).view({B, T, H}) +
                 W("embeddings.position_embeddings.weight").slice(0, 0, T) + W("embeddings.token_type_embeddings.weight")[0];
  x = norm(x, "embeddings.LayerNorm");
  at::Tensor additive = (1 - mask.to(at::kFloat)).view({B, 1, 1, T}) * -INFINITY;
  additive = at::nan_to_num(additive, 0.0, 0.0, -INFINITY);  // 0 * -inf
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "encoder.layer." + std::to_string(l);
    auto heads_of = [&](const at::Tensor& t) { return t.view({B, T, heads, d}).permute({0, 2, 1, 3}); };
    at::Tensor q = heads_of(linear(x, p + ".attention.self.query"));
    at::Tensor k = heads_of(linear(x, p + ".attention.self.key"));
    at::Tensor v = heads_of(linear(x, p + ".attention.self.value"));
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d)) + additive;
    at::Tensor context = at::matmul(at::softmax(scores, -1), v).permute({0, 2, 1, 3}).reshape({B, T, H});
    x = norm(linear(context, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm");
    at::Tensor inner = linear(x, p + ".intermediate.dense");
    inner = 0.5 * inner * (1 + at::erf(inner / std::sqrt(2.0)));
    x = norm(linear(inner, p + ".output.dense") + x, p + ".output.LayerNorm");
  }
  return x;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bert)

BOOST_AUTO_TEST_CASE(matches_naive_implementation_with_padding) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  auto encoder = model::load_encoder(tmp.path.string());
  c10::InferenceMode guard;
  at::Tensor ids = at::tensor({2, 5, 6, 7, 8, 3, 2, 18, 3, 0, 0, 0}, at::kLong).view({2, 6});
  at::Tensor mask = (ids != 0).to(at::kLong);
  at::Tensor ours = encoder.model->forward(ids, mask);
  at::Tensor reference = naive_bert(model::SafetensorsFile(tmp.file("model.safetensors")), encoder.bert_config("test"), ids, mask);
  at::Tensor valid = mask.unsqueeze(-1).to(at::kBool).expand_as(ours);
  double diff = (ours - reference).abs().masked_select(valid).max().item<double>();
  BOOST_TEST(diff < 1e-5, "max abs difference " << diff);
}

BOOST_AUTO_TEST_CASE(padding_does_not_change_real_tokens) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  auto encoder = model::load_encoder(tmp.path.string());
  c10::InferenceMode guard;
  at::Tensor alone = encoder.model->forward(at::tensor({2, 18, 3}, at::kLong).view({1, 3}), at::ones({1, 3}, at::kLong));
  at::Tensor padded = encoder.model->forward(at::tensor({2, 18, 3, 0, 0}, at::kLong).view({1, 5}),
                                            at::tensor({1, 1, 1, 0, 0}, at::kLong).view({1, 5}));
  BOOST_TEST(at::allclose(alone, padded.slice(1, 0, 3), 1e-5, 1e-5));
}

BOOST_AUTO_TEST_CASE(default_pooling_and_normalize_come_from_the_directory) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  BOOST_TEST(model::load_encoder(tmp.path.string()).pooling.name() == "cls");  // no 1_Pooling: cls
  std::filesystem::create_directories(tmp.path / "1_Pooling");
  testing::write_text(tmp.file("1_Pooling/config.json"), R"({"pooling_mode_mean_tokens": true})");
  testing::write_text(tmp.file("modules.json"), R"([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                                                    {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  auto encoder = model::load_encoder(tmp.path.string());
  BOOST_TEST(encoder.pooling.name() == "mean");
  BOOST_TEST(encoder.normalize);
  auto ids = encoder.tokenizer.encode("the cat", 8);
  auto batch = model::collate({&ids}, 0);
  BOOST_TEST(encoder.embed(batch).norm().item<double>() == 1.0, boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(loading_errors_name_the_file_and_problem) {
  testing::TempDir tmp;
  auto config = testing::tiny_config_json();
  config["intermediate_size"] = 48;
  testing::write_tiny_model(tmp.path, config);
  std::string message = error_of([&] { model::load_encoder(tmp.path.string()); });
  BOOST_TEST(message.find("model.safetensors: tensor 'encoder.layer.0.intermediate.dense.weight' has shape [32, 16] but") !=
                 std::string::npos,
             message);

  config = testing::tiny_config_json();
  config["model_type"] = "t5";
  config["architectures"] = {"T5Model"};
  testing::write_tiny_model(tmp.path, config);
  message = error_of([&] { model::load_encoder(tmp.path.string()); });
  BOOST_TEST(message.find("config.json: unknown architecture (model_type 't5'") != std::string::npos, message);

  testing::write_tiny_model(tmp.path);
  model::EncoderOptions too_long;
  too_long.max_length = 64;
  message = error_of([&] { model::load_encoder(tmp.path.string(), too_long); });
  BOOST_TEST(message.find("max length 64 exceeds the model's position limit 32") != std::string::npos, message);

  std::filesystem::remove(tmp.path / "model.safetensors");
  message = error_of([&] { model::load_encoder(tmp.path.string()); });
  BOOST_TEST(message.find("model.safetensors: missing") != std::string::npos, message);
  std::filesystem::remove(tmp.path / "config.json");
  message = error_of([&] { model::load_encoder(tmp.path.string()); });
  BOOST_TEST(message.find("config.json: missing") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(missing_tensor_is_named) {
  testing::TempDir tmp;
  testing::write_tiny_model(tmp.path);
  model::SafetensorsFile full(tmp.file("model.safetensors"));
  std::map<std::string, at::Tensor> kept;
  for (const auto& [name, info] : full.tensors())
    if (name != "encoder.layer.1.output.dense.bias") kept[name] = full.load(name);
  model::write_safetensors(tmp.file("model.safetensors"), kept);
  std::string message = error_of([&] { model::load_encoder(tmp.path.string()); });
  BOOST_TEST(message.find("missing tensor 'encoder.layer.1.output.dense.bias'") != std::string::npos, message);
}

BOOST_AUTO_TEST_SUITE_END()
