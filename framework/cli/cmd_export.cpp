#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "ckpt/checkpoint.h"
#include "model/encoder.h"
#include "train/job_config.h"

namespace angle::cli {
namespace {

// A sharded training checkpoint (step-<N>/, any world size): the base model and pooling of the job
// that wrote it, with the parameters stitched from every shard.
model::Encoder load_sharded(const std::string& dir, model::EncoderOptions options) {
  ckpt::FullCheckpoint full = ckpt::read_full(dir);
  const std::string job_file = (std::filesystem::temp_directory_path() / ("angle-export-" + std::to_string(::getpid()) + ".ini")).string();
  std::ofstream(job_file) << full.job;
  auto job = train::parse_job(job_file, {});
  std::filesystem::remove(job_file);
  if (!options.pooling) options.pooling = job->pooling;
  options.max_length = job->max_length;
  model::Encoder encoder = model::load_encoder(job->model_path, options);
  c10::NoGradGuard no_grad;
  for (auto& [name, param] : encoder.model.named_parameters()) {
    auto it = full.layout.find(name);
    ANGLE_CHECK(it != full.layout.end(), dir, ": checkpoint has no tensor '", name, "' of ", job->model_path);
    const auto& [offset, shape] = it->second;
    ANGLE_CHECK(shape == param.sizes().vec(), dir, ": tensor '", name, "' has shape ", at::IntArrayRef(shape),
                " in the checkpoint but ", param.sizes(), " in ", job->model_path);
    param.copy_(full.parameters.narrow(0, offset, param.numel()).view(param.sizes()));
  }
  return encoder;
}

}  // namespace

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
                               ? load_sharded(checkpoint, encoder_options)
                               : model::load_encoder(checkpoint, encoder_options);
  model::save_model_dir(encoder.model, encoder.export_spec, output);
  log_info("exported " + checkpoint + " -> " + output + " (" + encoder.pooling.name() + " pooling)");
  return 0;
}

}  // namespace angle::cli
