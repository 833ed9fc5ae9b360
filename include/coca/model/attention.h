// Multi-head attention with nn.MultiheadAttention's parameter layout and names, batch
// first. Same parameters as PyTorch so open_clip weights load 1:1 (CoCa: arXiv 2205.01917).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <utility>

namespace coca::model {

/// Sizes of one attention layer. kdim/vdim 0 = embed_dim (packed in_proj_weight).
struct AttentionOptions {
  AttentionOptions(int64_t embed_dim, int64_t heads) : embed_dim(embed_dim), heads(heads) {}
  int64_t embed_dim;  ///< query and output width D
  int64_t heads;      ///< attention heads H; D must be divisible by H
  int64_t kdim = 0;   ///< key width (0 = D)
  int64_t vdim = 0;   ///< value width (0 = D)
};

/// Turns an attention mask into an additive float mask (0 keep, -inf drop) that
/// broadcasts to [B, H, T, S]. `attn_mask`: [T, S] or [B, T, S], float (additive) or
/// bool (true = not allowed, PyTorch's convention). `key_padding_mask`: [B, S] bool,
/// true = ignore that key. Either may be undefined; both undefined -> undefined.
torch::Tensor merge_attention_masks(const torch::Tensor& attn_mask,
                                    const torch::Tensor& key_padding_mask,
                                    torch::ScalarType dtype);

/// Multi-head attention, parameters as torch.nn.MultiheadAttention:
///   kdim == vdim == D: `in_proj_weight` [3D, D], `in_proj_bias` [3D], `out_proj`;
///   otherwise: `q_proj_weight` [D, D], `k_proj_weight` [D, kdim], `v_proj_weight`
///   [D, vdim], `in_proj_bias` [3D], `out_proj`.
/// Self-attention (query, key and value the same tensor) runs the Q, K and V
/// projections as one matmul; cross-attention with equal widths runs K and V as one.
/// The attention itself is at::scaled_dot_product_attention where LibTorch has it
/// (2.x), else the explicit softmax(QK^T / sqrt(Dh) + mask) V.
class MultiheadAttentionImpl : public torch::nn::Cloneable<MultiheadAttentionImpl> {
 public:
  explicit MultiheadAttentionImpl(AttentionOptions options);

  void reset() override;
  /// PyTorch's init: xavier_uniform on the input projections, zero biases, out_proj
  /// weight keeps nn.Linear's default (kaiming-uniform), out_proj bias zero.
  void reset_parameters();

  /// query: [B, T, D], key: [B, S, kdim], value: [B, S, vdim] -> [B, T, D].
  /// attn_mask: [T, S] or [B, T, S] additive float or bool (true = masked);
  /// key_padding_mask: [B, S] bool (true = ignore). Both optional (undefined).
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& key,
                        const torch::Tensor& value, const torch::Tensor& attn_mask = {},
                        const torch::Tensor& key_padding_mask = {});

  /// True when K and V come from the packed in_proj_weight (kdim == vdim == D).
  bool packed() const { return packed_; }

  /// Incremental decoding (KV cache). key [B, S, kdim], value [B, S, vdim] -> projected
  /// keys and values split into heads, {[B, H, S, Dh], [B, H, S, Dh]}.
  std::pair<torch::Tensor, torch::Tensor> project_kv(const torch::Tensor& key,
                                                     const torch::Tensor& value);
  /// query [B, T, D] attends to already projected k, v [B, H, S, Dh] -> [B, T, D];
  /// attn_mask additive/bool [T, S] or [B, T, S], optional.
  torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& attn_mask = {});
  /// Causal self-attention of T new positions x [B, T, D] that follow the P positions
  /// whose keys/values are in cache_k/cache_v ([B, H, P, Dh], undefined when P = 0):
  /// appends the new keys/values to the cache and returns [B, T, D]. Equals rows P..P+T-1
  /// of forward(y, y, y, causal_mask) over the whole sequence y.
  torch::Tensor forward_cached(const torch::Tensor& x, torch::Tensor& cache_k,
                               torch::Tensor& cache_v);

  AttentionOptions options;
  torch::Tensor in_proj_weight;  ///< [3D, D] (packed only)
  torch::Tensor q_proj_weight;   ///< [D, D] (unpacked only)
  torch::Tensor k_proj_weight;   ///< [D, kdim] (unpacked only)
  torch::Tensor v_proj_weight;   ///< [D, vdim] (unpacked only)
  torch::Tensor in_proj_bias;    ///< [3D]
  torch::nn::Linear out_proj{nullptr};

 private:
  bool packed_ = true;
};
TORCH_MODULE(MultiheadAttention);

}  // namespace coca::model
