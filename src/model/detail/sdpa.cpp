#include "model/detail/sdpa.h"

#include <torch/torch.h>

#include <cmath>

#include "coca/common/compat.h"

namespace coca::model::detail {

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask) {
#if COCA_HAS_FUSED_SDPA
  return at::scaled_dot_product_attention(
      q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt);
#else
  // Scale q before the product (as PyTorch's math path does): [B,H,T,Dh] is smaller
  // than the [B,H,T,S] scores whenever S > Dh.
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q * scale, k.transpose(-2, -1));  // [B, H, T, S]
  if (mask.defined()) scores.add_(mask);
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

}  // namespace coca::model::detail
