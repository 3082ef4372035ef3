// Encoder parity with HuggingFace: make_encoder_reference.py stores, for real sentences, HF's
// token ids, transformers' last hidden state and sentence-transformers' pooled embeddings in a
// safetensors file; here our tokenizer, encoder and pooling must reproduce them.
//   angle_oracle_tests -- --model DIR --reference FILE.safetensors
#define BOOST_TEST_MODULE angle_oracle_tests
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <boost/test/unit_test.hpp>
#include <string>

#include "model/encoder.h"
#include "model/safetensors.h"
#include "reference_file.h"

using namespace angle;
using angle::oracle::argument;

namespace {

struct Reference {
  model::SafetensorsFile file{argument("--reference")};
  model::Encoder encoder = model::load_encoder(argument("--model"));
  at::Tensor ids = file.load("input_ids"), mask = file.load("attention_mask");

  std::vector<std::string> texts() const { return oracle::stored_texts(file); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(token_ids_equal_hf) {
  Reference ref;
  auto texts = ref.texts();
  BOOST_TEST_REQUIRE(static_cast<int64_t>(texts.size()) == ref.ids.size(0));
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ours = ref.encoder.tokenizer.encode(texts[i], ref.encoder.max_length);
    int64_t length = ref.mask[i].sum().item<int64_t>();
    std::vector<int64_t> theirs(ref.ids[i].data_ptr<int64_t>(), ref.ids[i].data_ptr<int64_t>() + length);
    BOOST_TEST_REQUIRE(ours == theirs, "sentence " << i << ": " << texts[i]);
  }
}

BOOST_AUTO_TEST_CASE(last_hidden_state_within_1e4_of_transformers) {
  Reference ref;
  c10::InferenceMode guard;
  at::Tensor ours = ref.encoder.model->forward(ref.ids, ref.mask);
  at::Tensor theirs = ref.file.load("last_hidden_state");
  BOOST_TEST_REQUIRE(ours.sizes() == theirs.sizes());
  at::Tensor valid = ref.mask.unsqueeze(-1).to(at::kBool).expand_as(ours);
  double diff = (ours - theirs).abs().masked_select(valid).max().item<double>();
  BOOST_TEST_MESSAGE("max |ours - transformers| over " << ref.mask.sum().item<int64_t>() << " tokens: " << diff);
  BOOST_TEST(diff <= 1e-4, "max abs difference " << diff);
}

BOOST_AUTO_TEST_CASE(pooled_embeddings_within_1e5_cosine_of_sentence_transformers) {
  Reference ref;
  c10::InferenceMode guard;
  at::Tensor ours = ref.encoder.embed({ref.ids, ref.mask});
  at::Tensor theirs = ref.file.load("st_embeddings");
  double distance = (1 - at::cosine_similarity(ours.to(at::kDouble), theirs.to(at::kDouble), 1)).max().item<double>();
  BOOST_TEST_MESSAGE("max cosine distance to sentence-transformers (" << ref.encoder.pooling.name() << "): " << distance);
  BOOST_TEST(distance <= 1e-5, "max cosine distance " << distance);
}
