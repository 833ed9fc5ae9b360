// Every LibTorch version difference lives here (Debian ships 1.13.1; GPU users build
// against official 2.x releases). Code elsewhere uses these names, never version checks.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

/// True when the LibTorch we compile against is at least major.minor.
#define COCA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

/// Fused scaled-dot-product attention (at::scaled_dot_product_attention) exists from 2.0.
#define COCA_HAS_FUSED_SDPA COCA_TORCH_AT_LEAST(2, 0)

namespace coca::compat {

/// The key type of torch::optim::Optimizer::state(). LibTorch 1.13 keys the map by
/// std::string, the text of the parameter's TensorImpl pointer as
/// c10::guts::to_string(p.unsafeGetTensorImpl()) writes it (an ostream `<<` of the
/// pointer, e.g. "0x55d0c0a8f2b0"); later releases key it by the TensorImpl pointer
/// itself (void*). Taken from the header, so no version number is guessed.
using OptimizerStateKey = typename std::decay_t<
    decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

namespace detail {
template <typename Key>
Key state_key_of(c10::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream out;  // what c10::guts::to_string does for a pointer
    out << impl;
    return out.str();
  } else {
    return static_cast<Key>(impl);
  }
}
}  // namespace detail

/// The key of parameter `p` in Optimizer::state() (and in custom optimizers that
/// follow LibTorch's convention). The key is tied to the TensorImpl, so it stays valid
/// while `p` is the same tensor object (set_data keeps it; assigning a new tensor
/// does not).
inline OptimizerStateKey state_key(const torch::Tensor& p) {
  return detail::state_key_of<OptimizerStateKey>(p.unsafeGetTensorImpl());
}

}  // namespace coca::compat
/// c10d: the class collectives are called on. 1.13 (Debian): ProcessGroup, which the
/// Gloo/NCCL groups derive from. 2.x: ProcessGroupGloo/NCCL derive from c10d::Backend
/// (ProcessGroup became a dispatcher-level wrapper), with the same allreduce/broadcast/
/// allgather/barrier signatures. coca::dist::ProcessGroup is defined from these.
#if COCA_TORCH_AT_LEAST(2, 0)
#define COCA_C10D_GROUP_HEADER <torch/csrc/distributed/c10d/Backend.hpp>
#define COCA_C10D_GROUP_CLASS ::c10d::Backend
#else
#define COCA_C10D_GROUP_HEADER <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#define COCA_C10D_GROUP_CLASS ::c10d::ProcessGroup
#endif

// ---- Autocast -----------------------------------------------------------------------
// 1.13 has per-device setters (set_enabled for CUDA, set_cpu_enabled, set_autocast_*_dtype);
// 2.4 replaced them with set_autocast_enabled(device_type, bool) / set_autocast_dtype(...).
#include <ATen/autocast_mode.h>

namespace coca::compat {

/// Mixed precision for the forward pass while alive (bf16 on CPU or CUDA), restoring the
/// previous state and clearing the autocast weight cache on exit.
class AutocastGuard {
 public:
  AutocastGuard(bool cuda, at::ScalarType dtype, bool enabled) : cuda_(cuda), enabled_(enabled) {
    if (!enabled_) return;
#if COCA_TORCH_AT_LEAST(2, 4)
    const auto device = cuda_ ? at::kCUDA : at::kCPU;
    previous_ = at::autocast::is_autocast_enabled(device);
    previous_dtype_ = at::autocast::get_autocast_dtype(device);
    at::autocast::set_autocast_dtype(device, dtype);
    at::autocast::set_autocast_enabled(device, true);
#else
    if (cuda_) {
      previous_ = at::autocast::is_enabled();
      previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(true);
    } else {
      previous_ = at::autocast::is_cpu_enabled();
      previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(true);
    }
#endif
  }
  ~AutocastGuard() {
    if (!enabled_) return;
#if COCA_TORCH_AT_LEAST(2, 4)
    const auto device = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(device, previous_);
    at::autocast::set_autocast_dtype(device, previous_dtype_);
#else
    if (cuda_) {
      at::autocast::set_enabled(previous_);
      at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    } else {
      at::autocast::set_cpu_enabled(previous_);
      at::autocast::set_autocast_cpu_dtype(previous_dtype_);
    }
#endif
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cuda_;
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

}  // namespace coca::compat
