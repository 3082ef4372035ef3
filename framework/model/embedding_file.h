// How a model directory embeds its texts, beyond what HuggingFace's and sentence-transformers'
// files can say, carried in the directory so that a trained model is scored and used as it was
// trained, with no flag:
//   angle_embedding.json                {"prompt": TEMPLATE, "bidirectional_from": K, "truncate_dim": D,
//                                       "matryoshka_dims": [384, 128, 64]}: ours; any key may be absent
//     prompt: a template with {text} (angle-emb's `encode(prompt=...)`, e.g. Prompts.A
//       'Summarize sentence "{text}" in one word:"'); a suffix too, which sentence-transformers
//       cannot express
//     bidirectional_from: a decoder's layers K.. attend both ways (BiLLM; model/decoder.h)
//     truncate_dim: embeddings keep their first D dimensions (a Matryoshka model used small)
//     matryoshka_dims: the sizes the model was trained to be cut to (loss/matryoshka.h); a record
//       for its users, e.g. which values of --dim it was trained for
//   config_sentence_transformers.json   {"prompts": {"text": PREFIX}, "default_prompt_name": "text",
//                                       "truncate_dim": D}: sentence-transformers applies them by
//                                       default; the prompt is written when the template is a prefix
//                                       ("PREFIX{text}")
// The prompt and truncate_dim are read from angle_embedding.json, else from sentence-transformers'
// file (its default prompt as PREFIX{text}). (angle-emb's own angle_config.json stores neither the prompt nor BiLLM's layer,
// which it takes from the environment: hence a file of ours.)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace angle::model {

struct EmbeddingSettings {
  std::string prompt;                      // "" : none
  std::optional<int64_t> bidirectional_from;  // unset: causal throughout
  std::optional<int64_t> truncate_dim;        // unset: the whole embedding
  std::vector<int64_t> matryoshka_dims;       // empty: not trained for truncation
};

// The directory's settings; defaults (no prompt, causal) for a directory without the files.
EmbeddingSettings read_embedding_settings(const std::string& dir);
// Writes the files above into `dir` (nothing for default settings).
void write_embedding_files(const std::string& dir, const EmbeddingSettings& settings);

}  // namespace angle::model
