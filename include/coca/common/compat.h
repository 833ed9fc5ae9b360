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
