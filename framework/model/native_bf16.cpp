#include "model/native_bf16.h"

#include <ATen/Context.h>
#include <ATen/cpu/Utils.h>

#include "core/error.h"

#ifdef ANGLE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace angle::model {

std::string native_bf16(const at::Device& device) {
  if (device.is_cpu()) {
    const auto capabilities = at::cpu::get_cpu_capabilities();
    for (const char* flag : {"amx_bf16", "avx512_bf16"}) {
      auto it = capabilities.find(flag);
      if (it != capabilities.end() && it->second.isBool() && it->second.toBool()) return flag;
    }
    return "";
  }
#ifdef ANGLE_WITH_CUDA
  if (device.is_cuda()) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device.has_index() ? device.index() : 0) != cudaSuccess) return "";
    if (properties.major >= 8) return "CUDA sm_" + std::to_string(properties.major * 10 + properties.minor);
  }
#endif
  return "";
}

std::string resolve_dtype(const std::string& option, const at::Device& device) {
  ANGLE_CHECK(option == "fp32" || option == "bf16" || option == "auto", "unknown dtype '", option,
              "' (fp32, bf16, or auto: bf16 where the device computes it natively)");
  if (option != "auto") return option;
  return native_bf16(device).empty() ? "fp32" : "bf16";
}

}  // namespace angle::model
