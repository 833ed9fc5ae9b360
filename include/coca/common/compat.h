// Every LibTorch version difference lives here (Debian ships 1.13.1; GPU users build
// against official 2.x releases). Code elsewhere uses these names, never version checks.
#pragma once

#include <torch/version.h>

/// True when the LibTorch we compile against is at least major.minor.
#define COCA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

/// Fused scaled-dot-product attention (at::scaled_dot_product_attention) exists from 2.0.
#define COCA_HAS_FUSED_SDPA COCA_TORCH_AT_LEAST(2, 0)

// ---- Optimizer state map key -------------------------------------------------------
// LibTorch 1.13 keys Optimizer::state() by the string form of the parameter's TensorImpl
// pointer; 2.x keys it by the pointer itself. The key type is read from the map, so no
// version number is guessed.
#include <torch/optim/optimizer.h>

#include <string>
#include <type_traits>
#include <utility>

namespace coca::compat {

using OptimizerStateKey = typename std::decay_t<
    decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

/// The key of `param` in torch::optim::Optimizer::state(). (A template so that only the
/// branch of the installed version is instantiated.)
template <typename TensorT = at::Tensor>
OptimizerStateKey optimizer_state_key(const TensorT& param) {
  if constexpr (std::is_same_v<OptimizerStateKey, std::string>) {
    return c10::guts::to_string(param.unsafeGetTensorImpl());
  } else {
    return param.unsafeGetTensorImpl();
  }
}

}  // namespace coca::compat
