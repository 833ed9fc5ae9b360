// Scaled dot-product attention core, the one place that picks the fused kernel
// (LibTorch >= 2.0, COCA_HAS_FUSED_SDPA) or the explicit math path (1.13).
#pragma once

#include <torch/types.h>

namespace coca::model::detail {

/// q: [B, H, T, Dh], k: [B, H, S, Dh], v: [B, H, S, Dh], mask: additive float
/// broadcastable to [B, H, T, S] or undefined -> [B, H, T, Dh].
/// softmax(q k^T / sqrt(Dh) + mask) v.
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask);

}  // namespace coca::model::detail
