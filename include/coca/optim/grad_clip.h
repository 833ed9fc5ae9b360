// Gradient clipping by global L2 norm over all parameters (as torch.nn.utils.clip_grad_norm_),
// which also reports a non-finite norm so the caller can skip the step.
#pragma once

#include <torch/types.h>

#include <vector>

namespace coca::optim {

struct GradNorm {
  double total_norm = 0.0;  ///< sqrt(sum over params of ||grad||^2), BEFORE clipping
  bool finite = true;       ///< false when total_norm is inf or nan (grads left untouched)
  bool clipped = false;     ///< true when grads were scaled down
};

/// Computes the global L2 norm of the defined grads of `params` (accumulated in float64)
/// and, when max_norm > 0, the norm is finite and exceeds max_norm, scales every grad by
/// max_norm / (total_norm + 1e-6) in place. max_norm = 0 only measures.
GradNorm clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace coca::optim
