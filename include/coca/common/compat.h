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
