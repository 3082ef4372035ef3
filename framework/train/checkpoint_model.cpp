#include "train/checkpoint_model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "train/job_config.h"

namespace angle::train {

model::Encoder load_checkpoint_encoder(const std::string& dir, model::EncoderOptions options) {
  ckpt::FullCheckpoint full = ckpt::read_full(dir);
  const JobConfig job = parse_job_text(full.job, dir + "/manifest.json (job)");
  const model::EncoderOptions asked = options;
  options = encoder_options(job);
  options.device = "cpu";
  if (asked.pooling) options.pooling = asked.pooling;
  if (asked.dim) options.dim = asked.dim;
  model::Encoder encoder = model::load_encoder(job.model_path, options);
  c10::NoGradGuard no_grad;
  for (auto& [name, param] : encoder.model->named_parameters()) {
    if (!param.requires_grad()) continue;  // frozen (LoRA's base): from the base model, not checkpointed
    auto it = full.layout.find(name);
    ANGLE_CHECK(it != full.layout.end(), dir, ": checkpoint has no tensor '", name, "' of ", job.model_path);
    const auto& [offset, shape] = it->second;
    ANGLE_CHECK(shape == param.sizes().vec(), dir, ": tensor '", name, "' has shape ", at::IntArrayRef(shape),
                " in the checkpoint but ", param.sizes(), " in ", job.model_path);
    param.copy_(full.parameters.narrow(0, offset, param.numel()).view(param.sizes()));
  }
  return encoder;
}

}  // namespace angle::train
