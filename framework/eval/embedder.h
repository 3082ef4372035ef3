// Embeds many texts with an Encoder: tokenizes, sorts by length so that batches carry little
// padding (as sentence-transformers does), runs the model without autograd, and restores the
// input order. Across ranks, batch b of that order is embedded by rank b % world size, so that a
// text is embedded in the same batch, with the same padding, at any number of ranks.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "model/encoder.h"

namespace angle::comm {
class Comm;
}

namespace angle::eval {

struct EmbedOptions {
  size_t batch_size = 32;
  bool progress = true;  // a progress line on stderr (rank 0's share across ranks)
  std::optional<std::string> prompt;  // instead of the encoder's (retrieval: queries and documents apart)
};

// [N, D] float32 on the CPU, row i for texts[i].
at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options = {});

// This rank's share: `rows` [n, D] float32 on the CPU for the texts `ids` (int64 [n], ascending).
struct EmbeddedShare {
  at::Tensor rows, ids;
};
EmbeddedShare embed_share(const model::Encoder& encoder, const std::vector<std::string>& texts,
                          const EmbedOptions& options, comm::Comm& comm);
// Every rank's shares gathered: [N, D] in text order on every rank.
at::Tensor embed_texts(const model::Encoder& encoder, const std::vector<std::string>& texts,
                       const EmbedOptions& options, comm::Comm& comm);

}  // namespace angle::eval
