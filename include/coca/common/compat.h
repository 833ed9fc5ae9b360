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
