#include "eval/embedder.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/log.h"

namespace angle::eval {

at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options) {
  ANGLE_CHECK(options.batch_size > 0, "--batch-size must be positive");
  ANGLE_CHECK(!texts.empty(), "nothing to embed");
  c10::InferenceMode no_autograd;
  std::vector<std::vector<int64_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i)
    ids[i] = encoder.tokenizer.encode_prompted(encoder.prompt, texts[i], encoder.max_length);

  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });

  at::Tensor out;
  Progress progress("embedded", static_cast<long long>(texts.size()));
  for (size_t start = 0; start < order.size(); start += options.batch_size) {
    size_t end = std::min(order.size(), start + options.batch_size);
    std::vector<const std::vector<int64_t>*> batch;
    for (size_t i = start; i < end; ++i) batch.push_back(&ids[order[i]]);
    at::Tensor embeddings = encoder.embed(encoder.collate(batch)).to(at::kCPU);
    if (!out.defined()) out = at::empty({static_cast<int64_t>(texts.size()), embeddings.size(1)}, at::kFloat);
    at::Tensor rows = at::from_blob(order.data() + start, {static_cast<int64_t>(end - start)}, at::kLong);
    out.index_copy_(0, rows.clone(), embeddings);
    if (options.progress) progress.update(static_cast<long long>(end), end == order.size());
  }
  return out;
}

}  // namespace angle::eval
