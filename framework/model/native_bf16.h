// Whether a device multiplies bf16 matrices natively (and so about twice as fast as fp32): CPUs
// with AVX512_BF16 or AMX_BF16 (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids and
// later), CUDA GPUs of compute capability 8.0 and later. Elsewhere bf16 is emulated and slower
// than fp32, so `--dtype auto` chooses fp32 there.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace angle::model {

// What makes bf16 native on `device` ("avx512_bf16", "amx_bf16", "CUDA sm_90"), or "" when nothing does.
std::string native_bf16(const at::Device& device);

// "fp32" or "bf16" for a dtype option: "auto" is bf16 where native_bf16(device) is non-empty.
std::string resolve_dtype(const std::string& option, const at::Device& device);

}  // namespace angle::model
