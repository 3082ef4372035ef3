#include "eval/embedder.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>

#include "comm/comm.h"
#include "core/error.h"
#include "core/log.h"

namespace angle::eval {
namespace {

// Rows for the texts of batches rank, rank + world, ...; ids in ascending text order.
EmbeddedShare embed_batches(const model::Encoder& encoder, const std::vector<std::string>& texts,
                            const EmbedOptions& options, int rank, int world) {
  ANGLE_CHECK(options.batch_size > 0, "--batch-size must be positive");
  ANGLE_CHECK(!texts.empty(), "nothing to embed");
  c10::InferenceMode no_autograd;
  const std::string& prompt = options.prompt ? *options.prompt : encoder.prompt;
  std::vector<std::vector<int64_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) ids[i] = encoder.tokenizer.encode_prompted(prompt, texts[i], encoder.max_length);

  std::vector<int64_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });

  const size_t batch = options.batch_size, stride = batch * static_cast<size_t>(world);
  size_t mine = 0;
  for (size_t start = batch * static_cast<size_t>(rank); start < order.size(); start += stride)
    mine += std::min(batch, order.size() - start);
  std::vector<at::Tensor> pieces;
  std::vector<int64_t> piece_ids;
  Progress progress("embedded", static_cast<long long>(mine));
  for (size_t start = batch * static_cast<size_t>(rank), done = 0; start < order.size(); start += stride) {
    const size_t end = std::min(order.size(), start + batch);
    std::vector<const std::vector<int64_t>*> sequences;
    for (size_t i = start; i < end; ++i) sequences.push_back(&ids[static_cast<size_t>(order[i])]);
    pieces.push_back(encoder.embed(encoder.collate(sequences)).to(at::kCPU, at::kFloat));
    piece_ids.insert(piece_ids.end(), order.begin() + static_cast<std::ptrdiff_t>(start),
                     order.begin() + static_cast<std::ptrdiff_t>(end));
    done += end - start;
    if (options.progress && rank == 0) progress.update(static_cast<long long>(done), done == mine);
  }
  if (pieces.empty()) return {at::Tensor(), at::empty({0}, at::kLong)};
  at::Tensor rows = at::cat(pieces), row_ids = at::tensor(piece_ids, at::kLong);
  auto [sorted_ids, by_id] = at::sort(row_ids);
  return {rows.index_select(0, by_id), sorted_ids};
}

}  // namespace

at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options) {
  return embed_batches(encoder, texts, options, 0, 1).rows;  // ids 0..N-1: rows in text order
}

EmbeddedShare embed_share(const model::Encoder& encoder, const std::vector<std::string>& texts,
                          const EmbedOptions& options, comm::Comm& comm) {
  EmbeddedShare share = embed_batches(encoder, texts, options, comm.rank(), comm.size());
  // A rank without a batch still needs [0, D]: the width from the ranks that have one.
  at::Tensor width = at::full({1, 1}, share.rows.defined() ? share.rows.size(1) : 0, at::kLong);
  const int64_t dim = comm.all_gather_rows(width).max().item<int64_t>();
  if (!share.rows.defined()) share.rows = at::empty({0, dim}, at::kFloat);
  return share;
}

at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options, comm::Comm& comm) {
  if (comm.size() == 1) return embed_texts(encoder, texts, options);
  const EmbeddedShare share = embed_share(encoder, texts, options, comm);
  const at::Tensor rows = comm.all_gather_rows(share.rows);
  const at::Tensor ids = comm.all_gather_rows(share.ids.unsqueeze(1)).squeeze(1);
  return at::empty_like(rows).index_copy_(0, ids, rows);
}

}  // namespace angle::eval
