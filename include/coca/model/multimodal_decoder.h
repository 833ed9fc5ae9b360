// The multimodal text decoder (CoCa paper §3.2): causal self-attention over the unimodal
// token states plus cross-attention to the image tokens, then ln_final and the output
// projection to vocabulary logits.
//   open_clip layout (its MultimodalTransformer): for each layer i, `resblocks.i` (causal
//     self-attention block with its own MLP) then `cross_attn.i` (cross-attention block
//     with ln_1_kv and its own MLP); ln_final; text_projection [W, V].
//   paper layout: `resblocks.i` are DecoderLayer (self-attention, cross-attention, ONE
//     MLP; keys ln_1, attn, ln_cross, ln_cross_kv, cross_attn, ln_2, mlp); ln_final;
//     text_projection [W, V] unless multimodal.tie_embeddings, then the logits use the
//     text tower's token_embedding.weight [V, W] (passed to forward) and no
//     text_projection exists.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "coca/model/model_config.h"
#include "coca/model/transformer_block.h"

namespace coca::model {

class MultimodalDecoderImpl : public torch::nn::Cloneable<MultimodalDecoderImpl> {
 public:
  explicit MultimodalDecoderImpl(const CoCaConfig& config);
  void reset() override;
  /// The init open_clip's MultimodalTransformer.init_parameters describes (in v2.32.0 it
  /// is never called, which leaves text_projection uninitialised): init_block_weights
  /// (W, layers) on every self- and cross-attention block, text_projection ~ N(0, W^-0.5).
  void reset_parameters();

  /// image_tokens: [B, S, W], token_states: [B, L, W] -> logits [B, L, V]; position t
  /// sees token states 0..t only. output_weight: [V, W], required when the embeddings
  /// are tied (logits = x @ output_weight^T), must be undefined otherwise.
  torch::Tensor forward(const torch::Tensor& image_tokens, const torch::Tensor& token_states,
                        const torch::Tensor& output_weight = {});

  /// True when the output projection is the token embedding (no text_projection).
  bool tied() const { return config.multimodal.tie_embeddings; }

  CoCaConfig config;
  torch::nn::ModuleList resblocks{nullptr};   ///< ResidualAttentionBlock | DecoderLayer
  torch::nn::ModuleList cross_attn{nullptr};  ///< open_clip layout only
  LayerNorm ln_final{nullptr};
  torch::Tensor text_projection;  ///< [W, V] (untied only)
};
TORCH_MODULE(MultimodalDecoder);

}  // namespace coca::model
