// Writes a model directory that HuggingFace transformers and sentence-transformers load as it
// is: config.json, model.safetensors (or a PEFT adapter), the tokenizer files of the source model, and
// modules.json + 1_Pooling/config.json describing `pooling`. Written to DIR.tmp-<pid> and
// renamed, so a directory under the final name is always complete.
#pragma once
#include <string>

#include "model/backbone.h"
#include "model/embedding_file.h"
#include "model/lora.h"
#include "model/pooling.h"

namespace angle::model {

struct ExportSpec {
  std::string source_dir;  // model directory the weights started from (tokenizer, config)
  Pooling pooling;
  bool normalize = false;
  size_t max_length = 512;
  LoraConfig lora;  // the model's adapters (base_model: source_dir, absolute)
  EmbeddingSettings embedding;  // the prompt, BiLLM's layer (model/embedding_file.h)
};

// A model with LoRA adapters is written as a PEFT adapter directory (adapter_config.json +
// adapter_model.safetensors, with the tokenizer and pooling files), or with `merge` as the full
// model with the adapters folded into its weights.
void save_model_dir(const Backbone& model, const ExportSpec& spec, const std::string& out_dir, bool merge = false);
// sentence-transformers can express cls, mean, max and last; the others are an error.
void check_exportable(const Pooling& pooling);

}  // namespace angle::model
