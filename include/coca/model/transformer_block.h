// Pre-LN transformer blocks and the block stack (open_clip's ResidualAttentionBlock and
// Transformer; the paper's decoder layer with self-attention, cross-attention and one
// MLP). LayerNorm eps 1e-5 everywhere, exact GELU.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <utility>

#include "coca/model/attention.h"
#include "coca/model/mlp.h"

namespace coca::model {

/// LayerNorm that normalises bf16/fp16 activations in its parameters' dtype
/// (float32) and returns that dtype: the fp32 policy LibTorch >= 2.0 autocast applies to
/// layer_norm, which 1.13's CPU autocast lacks (its CPU LayerNorm rejects bf16 inputs with
/// fp32 weights). The residual stream around it thus stays in float32 under autocast.
class LayerNormImpl : public torch::nn::LayerNormImpl {
 public:
  using torch::nn::LayerNormImpl::LayerNormImpl;
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(LayerNorm);

/// LayerNorm over the last dimension with eps 1e-5 (PyTorch's and open_clip's default).
LayerNorm make_layer_norm(int64_t width);

/// Sizes of a residual block.
struct BlockOptions {
  int64_t width = 0;             ///< hidden width D
  int64_t heads = 0;             ///< attention heads
  int64_t mlp_dim = 0;           ///< MLP hidden width
  bool cross_attention = false;  ///< attend to a memory (adds ln_1_kv)
};

/// open_clip's ResidualAttentionBlock: x += attn(ln_1(x)[, ln_1_kv(memory)]);
/// x += mlp(ln_2(x)). Keys: ln_1, attn.*, [ln_1_kv], ln_2, mlp.c_fc, mlp.c_proj.
class ResidualAttentionBlockImpl : public torch::nn::Cloneable<ResidualAttentionBlockImpl> {
 public:
  explicit ResidualAttentionBlockImpl(BlockOptions options);
  void reset() override;

  /// x: [B, T, D] -> [B, T, D]. memory: [B, S, D] (cross-attention blocks only, then
  /// keys and values are ln_1_kv(memory)); attn_mask: [T, S] / [B, T, S] additive or bool.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory = {},
                        const torch::Tensor& attn_mask = {});

  /// Incremental decoding, self-attention block: x [B, T, D] new positions, causal over
  /// the cached keys/values (attn.forward_cached), which grow by T.
  torch::Tensor forward_cached(const torch::Tensor& x, torch::Tensor& cache_k,
                               torch::Tensor& cache_v);
  /// Cross-attention block: the memory's projected keys/values {[B, H, S, Dh] x 2},
  /// computed once per image (attn.project_kv(ln_1_kv(memory))).
  std::pair<torch::Tensor, torch::Tensor> memory_kv(const torch::Tensor& memory);
  /// Cross-attention block with memory_kv's output: x [B, T, D] -> [B, T, D].
  torch::Tensor forward_memory_kv(const torch::Tensor& x, const torch::Tensor& k,
                                  const torch::Tensor& v);

  BlockOptions options;
  LayerNorm ln_1{nullptr};
  MultiheadAttention attn{nullptr};
  LayerNorm ln_1_kv{nullptr};  ///< cross-attention blocks only
  LayerNorm ln_2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

/// The paper layout's multimodal decoder layer (a standard pre-LN decoder layer):
///   x += attn(ln_1(x)) (causal);  x += cross_attn(ln_cross(x), ln_cross_kv(memory));
///   x += mlp(ln_2(x)).
/// Keys: ln_1, attn.*, ln_cross, ln_cross_kv, cross_attn.*, ln_2, mlp.c_fc, mlp.c_proj.
/// ln_1/attn/ln_2/mlp keep open_clip's meaning; the cross-attention norms mirror
/// open_clip's ln_1 (query) and ln_1_kv (memory) of its separate cross-attention block.
class DecoderLayerImpl : public torch::nn::Cloneable<DecoderLayerImpl> {
 public:
  explicit DecoderLayerImpl(BlockOptions options);
  void reset() override;

  /// x: [B, T, D], memory: [B, S, D], attn_mask: causal [T, T] -> [B, T, D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory,
                        const torch::Tensor& attn_mask);

  /// The memory's projected cross-attention keys/values {[B, H, S, Dh] x 2}
  /// (cross_attn.project_kv(ln_cross_kv(memory))), computed once per image.
  std::pair<torch::Tensor, torch::Tensor> memory_kv(const torch::Tensor& memory);
  /// Incremental decoding: x [B, T, D] new positions; self-attention over the cached
  /// keys/values (which grow by T), cross-attention to memory_kv's k, v.
  torch::Tensor forward_cached(const torch::Tensor& x, torch::Tensor& cache_k,
                               torch::Tensor& cache_v, const torch::Tensor& memory_k,
                               const torch::Tensor& memory_v);

  BlockOptions options;
  LayerNorm ln_1{nullptr};
  MultiheadAttention attn{nullptr};
  LayerNorm ln_cross{nullptr};
  LayerNorm ln_cross_kv{nullptr};
  MultiheadAttention cross_attn{nullptr};
  LayerNorm ln_2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

/// open_clip's Transformer: `resblocks.N` self-attention blocks.
class TransformerImpl : public torch::nn::Cloneable<TransformerImpl> {
 public:
  TransformerImpl(BlockOptions options, int64_t layers, bool checkpoint_activations = false);
  void reset() override;

  /// x: [B, T, D] -> [B, T, D]; attn_mask as in ResidualAttentionBlock.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask = {});

  BlockOptions options;
  int64_t layers;
  /// Recompute each block's activations in backward (only when grad mode is on and the
  /// module is training); gradients are identical.
  bool checkpoint_activations;
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(Transformer);

/// open_clip's init of a residual block stack (TextTransformer.init_parameters):
/// attn in_proj ~ N(0, D^-0.5), attn out_proj ~ N(0, D^-0.5 (2L)^-0.5),
/// mlp.c_fc ~ N(0, (2D)^-0.5), mlp.c_proj ~ N(0, D^-0.5 (2L)^-0.5); biases and norms
/// keep PyTorch's defaults. Applied to every attention of the block (self and cross).
void init_block_weights(torch::nn::Module& block, int64_t width, int64_t layers);

}  // namespace coca::model
