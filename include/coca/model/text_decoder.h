// The unimodal text decoder (CoCa paper §3.2; open_clip's TextTransformer with
// embed_cls): causal self-attention only, a learned [CLS] embedding appended at the END
// whose output, after ln_final and text_projection, is the contrastive text embedding.
// Keys: token_embedding.weight [V, W], positional_embedding [T + 1, W], cls_emb [W],
// transformer.resblocks.N.*, ln_final, text_projection [W, E] (used as x @ P).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

#include "coca/model/model_config.h"
#include "coca/model/transformer_block.h"

namespace coca::model {

/// What the text tower returns.
struct TextEncoding {
  torch::Tensor latent;  ///< [B, E] ln_final(x[:, -1]) @ text_projection, not normalised
  torch::Tensor tokens;  ///< [B, T, W] token states x[:, :-1], WITHOUT ln_final (as open_clip)
};

/// Additive attention mask [B, T + 1, T + 1] (0 keep, -inf drop) for text [B, T] with the
/// [CLS] appended at position T: causal for every row, and the [CLS] row (T) attends to
///   correct (default): key j < T iff text[j] != pad_id, and to itself (key T);
///   legacy (open_clip v2.32.0 build_cls_mask, F.pad(text != pad, (1, 0, T, 0), True)):
///   key 0 always, key j >= 1 iff text[j - 1] != pad_id. Shifted by one: it also sees
///   the first pad token after the text, and sees itself only when text[T - 1] is not
///   padding. open_clip's released weights were trained with it.
torch::Tensor build_text_attention_mask(const torch::Tensor& text, int64_t pad_id, bool legacy,
                                        torch::ScalarType dtype = torch::kFloat);

/// The causal additive mask [T, T]: -inf above the diagonal.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options);

/// Unimodal text tower.
class TextTransformerImpl : public torch::nn::Cloneable<TextTransformerImpl> {
 public:
  explicit TextTransformerImpl(const CoCaConfig& config);
  void reset() override;
  /// open_clip's TextTransformer.init_parameters: token_embedding ~ N(0, 0.02),
  /// positional_embedding ~ N(0, 0.01), cls_emb ~ N(0, 0.01), blocks as
  /// init_block_weights(W, layers), text_projection ~ N(0, W^-0.5).
  void reset_parameters();

  /// text: [B, T'] int64 with T' <= T (context_length) -> TextEncoding.
  TextEncoding forward(const torch::Tensor& text);

  CoCaConfig config;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;  ///< [T + 1, W]
  torch::Tensor cls_emb;               ///< [W]
  Transformer transformer{nullptr};
  LayerNorm ln_final{nullptr};
  torch::Tensor text_projection;  ///< [W, E]
};
TORCH_MODULE(TextTransformer);

}  // namespace coca::model
