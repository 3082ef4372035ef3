#include "eval/sts_eval.h"

#include <ATen/ATen.h>

#include "eval/correlation.h"

namespace angle::eval {

StsScore evaluate_sts(const model::Encoder& encoder, const data::StsPairs& pairs, const EmbedOptions& options) {
  at::Tensor a = embed_texts(encoder, pairs.text1, options).to(at::kDouble);
  at::Tensor b = embed_texts(encoder, pairs.text2, options).to(at::kDouble);
  at::Tensor cosine = at::cosine_similarity(a, b, 1).contiguous();
  std::vector<double> predicted(cosine.data_ptr<double>(), cosine.data_ptr<double>() + cosine.numel());
  return {100 * spearman(predicted, pairs.score), 100 * pearson(predicted, pairs.score), pairs.score.size()};
}

}  // namespace angle::eval
