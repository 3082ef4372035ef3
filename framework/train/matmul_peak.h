// The FLOP/s that at::mm reaches on this machine, on the shapes of the encoder's linear layers (the
// step's FLOPs are almost all there): the peak a training step's achieved model FLOP/s is set
// beside at the end of `angle train`.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

#include "model/model_shape.h"

namespace angle::train {

// at::mm of [rows, in] x [in, out] for each linear layer shape of a layer (BERT: Q, K, V and the
// attention output: hidden -> hidden, the MLP: hidden -> intermediate -> hidden; a decoder: Q, K, V
// and O by its heads, key/value heads and head size, the MLP's gate, up and down), forward only,
// in `dtype` on `device`, repeated for about `seconds`; returns FLOPs (2 * rows * in * out each)
// per second.
double linear_layers_mm_flops(const model::ModelShape& shape, int64_t rows, c10::ScalarType dtype,
                              const c10::Device& device, double seconds = 1.0);

}  // namespace angle::train
