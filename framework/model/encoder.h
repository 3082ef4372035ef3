// A sentence encoder loaded from a HuggingFace / sentence-transformers model directory:
// tokenizer + backbone (BERT, or a LLaMA-family decoder) + pooling (+ optional L2 normalisation),
// with defaults read from the directory (1_Pooling/config.json, modules.json,
// sentence_bert_config.json). A decoder pools the last token by default. A PEFT adapter directory
// (adapter_config.json) loads as its base model (base_model_name_or_path) with the adapters.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "model/backbone.h"
#include "model/bert_config.h"
#include "model/export.h"
#include "model/lora.h"
#include "model/pooling.h"
#include "text/tokenizer.h"

namespace angle::model {

struct EncoderOptions {
  std::optional<std::string> pooling;  // default: the model's own, else cls
  std::optional<size_t> max_length;    // default: the model's, capped by its position limit
  std::optional<bool> normalize;       // default: true iff modules.json has a Normalize module
  std::string dtype = "fp32";          // fp32 | bf16 | auto (model/native_bf16.h)
  std::string device = "cpu";          // cpu | cuda | cuda:N
  std::optional<double> dropout;       // overrides hidden and attention dropout (training)
  // A template with {text} every text is put in before tokenization ("": none); default: the model
  // directory's (model/embedding_file.h).
  std::optional<std::string> prompt;
  // A decoder's layers K.. attend both ways (BiLLM, model/decoder.h); default: the model
  // directory's, else that of `lora_init`'s adapter (model/embedding_file.h).
  std::optional<int64_t> bidirectional_from;
  // Embeddings keep their first `dim` dimensions (re-normalised when the model normalises);
  // default: the model directory's truncate_dim, else all (model/embedding_file.h).
  std::optional<int64_t> dim;
  // The sizes the model is trained to be cut to (loss.matryoshka_dims), recorded on export; default:
  // the model directory's.
  std::optional<std::vector<int64_t>> matryoshka_dims;
  // LoRA adapters on a decoder (model/lora.h), the base frozen: loaded from `lora_init` (a PEFT
  // adapter directory) when set, else fresh from `lora_seed`.
  LoraConfig lora;
  std::string lora_init;
  uint64_t lora_seed = 0;
  // The base weights are located and checked, not read: the backbone's parameters are released
  // (their shapes kept, no memory: model/storage.h) and Encoder::weights says where their values
  // lie, for a sharder that reads only its rank's slices (shard/fsdp.h). Adapters are made as
  // always.
  bool defer_weights = false;
};

// Token ids of a batch, padded on the tokenizer's side: ids and mask are int64 [B, T].
struct TokenBatch {
  at::Tensor input_ids;
  at::Tensor attention_mask;
};
TokenBatch collate(const std::vector<const std::vector<int64_t>*>& sequences, int64_t pad_id,
                   PaddingSide side = PaddingSide::right);

struct Encoder {
  std::string dir;
  text::Tokenizer tokenizer;
  std::shared_ptr<Backbone> model;
  Pooling pooling;
  bool normalize = false;
  size_t max_length = 512;
  std::string prompt;  // template with {text}, or "" (model/embedding_file.h)
  int64_t dim = 0;     // embeddings keep their first `dim` dimensions (0: all)
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  ExportSpec export_spec;  // how to write this encoder back as a model directory

  bool is_llm = false;  // a decoder backbone
  std::shared_ptr<const ParameterFiles> weights;  // set with EncoderOptions::defer_weights

  // The batch of these sequences, padded as the tokenizer pads.
  TokenBatch collate(const std::vector<const std::vector<int64_t>*>& sequences) const;
  // Pooled embeddings of one batch, cut to `dim` and normalised when the model normalises, float32 on
  // the model's device.
  at::Tensor embed(const TokenBatch& batch) const;
  // The BERT configuration; an error naming `what` for a decoder (planning and the step profile
  // know BERT only).
  const BertConfig& bert_config(const std::string& what) const;
};

Encoder load_encoder(const std::string& dir, const EncoderOptions& options = {});
// Whether a model directory's config.json names a decoder (llama, mistral, qwen2, qwen3).
bool is_decoder_dir(const std::string& dir);
// The max length a model directory implies: sentence-transformers' max_seq_length, else the
// tokenizer's limit, never above the position limit.
size_t default_max_length(const std::string& model_dir, const text::Tokenizer& tokenizer, int64_t max_positions);

}  // namespace angle::model
