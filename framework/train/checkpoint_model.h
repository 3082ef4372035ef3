// A sharded training checkpoint (step-<N>/, written on any number of ranks) as a model: the base
// model and pooling of the job that wrote it, with the parameters stitched from every shard.
#pragma once
#include <string>

#include "model/encoder.h"

namespace angle::train {

// Not collective. `options.pooling` and `options.dim` override the job's; the max length is the job's.
model::Encoder load_checkpoint_encoder(const std::string& dir, model::EncoderOptions options = {});

}  // namespace angle::train
