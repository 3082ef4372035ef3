#include <filesystem>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "train/checkpoint_model.h"
#include "model/encoder.h"

namespace angle::cli {

int run_export(const std::vector<std::string>& args) {
  po::options_description options("export");
  options.add_options()
      ("checkpoint", po::value<std::string>()->required(),
       "a sharded checkpoint (step-<N>/, any world size) or a model directory (best/, final/) of `angle train`")
      ("output", po::value<std::string>()->required(), "HF / sentence-transformers model directory to write")
      ("pooling", po::value<std::string>(), "override the pooling recorded in the checkpoint")
      ("dim", po::value<int64_t>(), "the model keeps the first D dimensions of its embeddings by default: "
                                    "truncate_dim, which sentence-transformers reads too")
      ("merge", po::bool_switch(), "LoRA: write the full model with the adapters folded into its weights (default: "
                                   "a PEFT adapter directory, adapter_config.json + adapter_model.safetensors)");
  auto vm = parse("export", "--checkpoint DIR --output DIR", options, args);
  if (!vm) return 0;
  const std::string output = (*vm)["output"].as<std::string>();
  ANGLE_CHECK(!std::filesystem::exists(output) || std::filesystem::is_directory(output), output,
              ": exists and is not a directory");
  model::EncoderOptions encoder_options;
  if (vm->count("pooling")) encoder_options.pooling = (*vm)["pooling"].as<std::string>();
  if (vm->count("dim")) encoder_options.dim = (*vm)["dim"].as<int64_t>();
  const std::string checkpoint = (*vm)["checkpoint"].as<std::string>();
  model::Encoder encoder = std::filesystem::exists(std::filesystem::path(checkpoint) / "manifest.json")
                               ? train::load_checkpoint_encoder(checkpoint, encoder_options)
                               : model::load_encoder(checkpoint, encoder_options);
  const bool merge = (*vm)["merge"].as<bool>();
  ANGLE_CHECK(!merge || encoder.export_spec.lora.enabled(), "--merge: ", checkpoint, " has no LoRA adapters to merge");
  model::save_model_dir(*encoder.model, encoder.export_spec, output, merge);
  const std::string form = !encoder.export_spec.lora.enabled() ? "" : merge ? ", LoRA merged" : ", PEFT adapter";
  const std::string dim = encoder.dim > 0 ? ", truncate_dim " + std::to_string(encoder.dim) : "";
  log_info("exported " + checkpoint + " -> " + output + " (" + encoder.pooling.name() + " pooling" + form + dim + ")");
  return 0;
}

}  // namespace angle::cli
