// Attentional pooler (CoCa paper §3.2, Tab. 8f; open_clip's AttentionalPooler): learned
// queries attend, through one multi-head attention layer, over a token sequence.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

#include "coca/model/attention.h"
#include "coca/model/transformer_block.h"

namespace coca::model {

/// Sizes of one pooler.
struct AttentionPoolOptions {
  int64_t width = 0;          ///< query and output width D
  int64_t context_width = 0;  ///< width of the pooled tokens (kdim = vdim)
  int64_t heads = 8;          ///< attention heads
  int64_t queries = 256;      ///< learned queries Q
};

/// out = attn(ln_q(query), ln_k(tokens), ln_k(tokens)). Keys: query [Q, D], attn.*
/// (q/k/v_proj_weight when context_width != D), ln_q [D], ln_k [context_width].
class AttentionPoolImpl : public torch::nn::Cloneable<AttentionPoolImpl> {
 public:
  explicit AttentionPoolImpl(AttentionPoolOptions options);
  void reset() override;
  /// query ~ N(0, 1) (open_clip: torch.randn); attention as PyTorch's default.
  void reset_parameters();

  /// tokens: [B, N, context_width] -> [B, Q, D]
  torch::Tensor forward(const torch::Tensor& tokens);

  AttentionPoolOptions options;
  torch::Tensor query;  ///< [Q, D]
  MultiheadAttention attn{nullptr};
  LayerNorm ln_q{nullptr};
  LayerNorm ln_k{nullptr};
};
TORCH_MODULE(AttentionPool);

}  // namespace coca::model
