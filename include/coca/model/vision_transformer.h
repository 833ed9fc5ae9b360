// The ViT image encoder with CoCa's attentional poolers (paper §3.1-3.2, Tab. 8f), as
// open_clip's `visual` module: conv1, [class_embedding], positional_embedding, ln_pre,
// transformer.resblocks.N, attn_pool, [attn_pool_contrastive], ln_post, proj.
// With vision.stem 'conv' (not in open_clip), stem.N.{conv,norm} come before conv1,
// which is then a 1x1 convolution.
//
// Pooler modes (model.pooler.mode), with Dv = vision width, Dt = text width:
//   single   (open_clip): p = ln_post(attn_pool(x)) [B, Q, Dt]; latent = p[:, 0] @ proj,
//            tokens = p[:, 1:] (Q - 1 decoder tokens).
//   cascade  (paper default): tokens = attn_pool(x) [B, Q, Dt];
//            latent = ln_post(attn_pool_contrastive(tokens)[:, 0]) @ proj.
//   parallel: tokens = attn_pool(x); latent = ln_post(attn_pool_contrastive(x)[:, 0]) @ proj.
// In cascade/parallel the decoder tokens leave un-normalised: every consumer normalises
// its input itself (the poolers' ln_k, the decoder's per-layer memory norm), and the ViT
// output is only read by the poolers, whose ln_k plays the ViT's final LayerNorm.
// ln_post [Dt] sits where it does for the text tower's ln_final: right before the
// contrastive projection proj [Dt, E].
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

#include "coca/model/attention_pool.h"
#include "coca/model/model_config.h"
#include "coca/model/transformer_block.h"

namespace coca::model {

/// What the image tower returns.
struct ImageEncoding {
  torch::Tensor latent;  ///< [B, E] contrastive embedding, not normalised
  torch::Tensor tokens;  ///< [B, Q, Dt] (cascade/parallel) or [B, Q-1, Dt] (single)
};

/// Resizes the grid part of a learned positional embedding (open_clip's
/// resize_pos_embed: bicubic, align_corners = false, antialias = true; the first
/// `prefix_tokens` rows, the class token's, are kept).
/// pos: [prefix + old_h * old_w, D] -> [prefix + new_h * new_w, D].
torch::Tensor interpolate_positional_embedding(const torch::Tensor& pos, int64_t prefix_tokens,
                                               int64_t old_h, int64_t old_w, int64_t new_h,
                                               int64_t new_w);

/// One layer of the convolutional stem: relu(norm(conv(x))), conv 3x3 stride 2 without bias,
/// norm a BatchNorm2d (PyTorch's defaults: eps 1e-5, momentum 0.1).
class StemLayerImpl : public torch::nn::Cloneable<StemLayerImpl> {
 public:
  StemLayerImpl(int64_t in, int64_t out);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_channels, out_channels;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(StemLayer);

/// ViT + poolers. The pooler width Dt is the text width (the decoder reads the tokens);
/// in open_clip configs it equals embed_dim.
class VisionTransformerImpl : public torch::nn::Cloneable<VisionTransformerImpl> {
 public:
  explicit VisionTransformerImpl(const CoCaConfig& config);
  void reset() override;
  /// open_clip's init: class_embedding, positional_embedding, proj ~ N(0, Dv^-0.5);
  /// conv1, blocks and poolers keep PyTorch's defaults (open_clip's
  /// VisionTransformer.init_parameters is a no-op); pooler queries ~ N(0, 1).
  void reset_parameters();

  /// Patch embeddings, before the class token and positions: images [B, 3, H, W] with H,
  /// W multiples of the patch size -> [B, H/p * W/p, Dv]. The only part of the tower
  /// that can mix rows of the batch (the conv stem's BatchNorm).
  torch::Tensor embed(const torch::Tensor& images);
  /// The transformer over embed()'s output for a grid of gh x gw patches (another grid
  /// than the configured one interpolates the positional embedding) -> [B, N, Dv].
  torch::Tensor forward_patches(const torch::Tensor& patches, int64_t gh, int64_t gw);
  /// ViT tokens after the transformer: forward_patches(embed(images), H/p, W/p).
  torch::Tensor forward_features(const torch::Tensor& images);
  /// The poolers and the contrastive head over forward_features' output.
  ImageEncoding pool(const torch::Tensor& features);
  /// images: [B, C, H, W] -> ImageEncoding.
  ImageEncoding forward(const torch::Tensor& images);

  CoCaConfig config;
  torch::nn::ModuleList stem{nullptr};  ///< StemLayer x log2(patch) (vision.stem 'conv')
  torch::nn::Conv2d conv1{nullptr};     ///< patch embedding, or the stem's 1x1 projection
  torch::Tensor class_embedding;       ///< [Dv] (vision.class_token only)
  torch::Tensor positional_embedding;  ///< [(1) + grid^2, Dv]
  LayerNorm ln_pre{nullptr};
  Transformer transformer{nullptr};
  AttentionPool attn_pool{nullptr};              ///< Q queries over the ViT tokens
  AttentionPool attn_pool_contrastive{nullptr};  ///< 1 query (cascade/parallel)
  LayerNorm ln_post{nullptr};         ///< [Dt]
  torch::Tensor proj;                            ///< [Dt, E], used as x @ proj
};
TORCH_MODULE(VisionTransformer);

}  // namespace coca::model
