// The step profile's device clock on CUDA (train/step_profile.h): timing events recorded on the
// rank's current (compute) stream.
#pragma once
#include <c10/core/Device.h>

#include <memory>

#include "train/step_profile.h"

namespace angle::train {

// nullptr for the CPU and in builds without CUDA.
std::unique_ptr<DeviceClock> make_device_clock(const c10::Device& device);

}  // namespace angle::train
