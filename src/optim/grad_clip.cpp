// Global-norm gradient clipping.
#include "coca/optim/grad_clip.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace coca::optim {

GradNorm clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  if (!(max_norm >= 0)) {
    throw std::invalid_argument("clip_grad_norm: max_norm must be >= 0, got " +
                                std::to_string(max_norm));
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> squares;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    squares.push_back(g.to(torch::kDouble).pow(2).sum());
  }
  GradNorm out;
  if (squares.empty()) return out;
  out.total_norm = torch::stack(squares).sum().sqrt().item<double>();
  out.finite = std::isfinite(out.total_norm);
  if (out.finite && max_norm > 0 && out.total_norm > max_norm) {
    const double coef = max_norm / (out.total_norm + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
    }
    out.clipped = true;
  }
  return out;
}

}  // namespace coca::optim
