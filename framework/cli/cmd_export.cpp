#include <filesystem>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "ckpt/checkpoint_model.h"
#include "model/encoder.h"

namespace angle::cli {

int run_export(const std::vector<std::string>& args) {
  po::options_description options("export");
  options.add_options()
      ("checkpoint", po::value<std::string>()->required(),
       "a sharded checkpoint (step-<N>/, any world size) or a model directory (best/, final/) of `angle train`")
      ("output", po::value<std::string>()->required(), "HF / sentence-transformers model directory to write")
      ("pooling", po::value<std::string>(), "override the pooling recorded in the checkpoint");
  auto vm = parse("export", "--checkpoint DIR --output DIR", options, args);
  if (!vm) return 0;
  const std::string output = (*vm)["output"].as<std::string>();
  ANGLE_CHECK(!std::filesystem::exists(output) || std::filesystem::is_directory(output), output,
              ": exists and is not a directory");
  model::EncoderOptions encoder_options;
  if (vm->count("pooling")) encoder_options.pooling = (*vm)["pooling"].as<std::string>();
  const std::string checkpoint = (*vm)["checkpoint"].as<std::string>();
  model::Encoder encoder = std::filesystem::exists(std::filesystem::path(checkpoint) / "manifest.json")
                               ? ckpt::load_checkpoint_encoder(checkpoint, encoder_options)
                               : model::load_encoder(checkpoint, encoder_options);
  model::save_model_dir(*encoder.model, encoder.export_spec, output);
  log_info("exported " + checkpoint + " -> " + output + " (" + encoder.pooling.name() + " pooling)");
  return 0;
}

}  // namespace angle::cli
