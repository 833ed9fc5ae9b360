// The CoCa model (Contrastive Captioner, arXiv 2205.01917): image tower with attentional
// poolers, unimodal text decoder with an appended [CLS], multimodal decoder. Module tree
// and parameter names follow open_clip's CoCa (`visual`, `text`, `text_decoder`,
// `logit_scale`), so a state dict maps 1:1 onto named_parameters().
//
// Example:
//   model::CoCa model(config::model_from_yaml(config::preset_yaml("coca_tiny"), "coca_tiny"));
//   auto out = model->forward(images, text);  // out.logits [B, T-1, V] vs text[:, 1:]
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "coca/model/model_config.h"
#include "coca/model/multimodal_decoder.h"
#include "coca/model/text_decoder.h"
#include "coca/model/vision_transformer.h"

namespace coca::model {

/// Everything one forward pass produces (open_clip's output dict plus the latents).
struct CoCaOutput {
  torch::Tensor image_features;  ///< [B, E] L2-normalised image_latent
  torch::Tensor text_features;   ///< [B, E] L2-normalised text_latent
  torch::Tensor image_latent;    ///< [B, E] contrastive image embedding, unnormalised
  torch::Tensor text_latent;     ///< [B, E] ln_final([CLS]) @ text_projection, unnormalised
  torch::Tensor image_tokens;    ///< [B, Q or Q-1, W] decoder memory
  torch::Tensor text_tokens;     ///< [B, T, W] unimodal token states (no ln_final)
  torch::Tensor logits;          ///< [B, T-1, V]: position t predicts text[:, t + 1]
  /// [] exp(model.logit_scale), the contrastive temperature's inverse, as open_clip's
  /// output dict; the raw (log) parameter is CoCaImpl::logit_scale.
  torch::Tensor logit_scale;
};

/// Incremental-decoding state for N rows (images or beams): the unimodal and multimodal
/// decoders' self-attention keys/values of every position fed so far, and the
/// multimodal decoder's cross-attention keys/values of the image tokens (computed once
/// in CoCaImpl::start_decoding). The unimodal [CLS] is never fed: token positions do not
/// attend to it, so their states are the same without it.
struct DecodeCache {
  torch::Tensor image_tokens;             ///< [N, S, W] decoder memory
  std::vector<torch::Tensor> text_k;      ///< per text layer [N, H, L, Dh]
  std::vector<torch::Tensor> text_v;
  std::vector<torch::Tensor> decoder_k;   ///< per multimodal layer, self-attention [N, H, L, Dh]
  std::vector<torch::Tensor> decoder_v;
  std::vector<torch::Tensor> memory_k;    ///< per multimodal layer, cross-attention [N, H, S, Dh]
  std::vector<torch::Tensor> memory_v;
  int64_t length = 0;                     ///< L: positions fed so far (next position index)

  int64_t rows() const { return image_tokens.size(0); }
  /// Keeps rows `index` [N'] (int64, may repeat), in that order (beam reordering).
  void select(const torch::Tensor& index);
};

class CoCaImpl : public torch::nn::Cloneable<CoCaImpl> {
 public:
  explicit CoCaImpl(const CoCaConfig& config);
  void reset() override;
  /// Re-draws every parameter (each submodule's reset_parameters, logit_scale =
  /// config.init_logit_scale).
  void reset_parameters();

  /// images: [B, 3, H, W] float, text: [B, T] int64 (T <= context_length, T >= 2) ->
  /// CoCaOutput from one graph: the decoder reads text_tokens[:, :-1].
  CoCaOutput forward(const torch::Tensor& images, const torch::Tensor& text);
  /// The same from patch embeddings at the configured image size:
  /// forward(images, text) == forward_patches(visual->embed(images), text). Lets a caller
  /// run the embedding (the only op that mixes rows of a batch) once over a whole batch
  /// and the rest in row blocks.
  CoCaOutput forward_patches(const torch::Tensor& patches, const torch::Tensor& text);

  /// Image tower alone: images [B, 3, H, W] -> {latent [B, E], tokens}.
  ImageEncoding encode_image(const torch::Tensor& images);
  /// Text tower alone: text [B, T] -> {latent [B, E], tokens [B, T, W]}.
  TextEncoding encode_text(const torch::Tensor& text);
  /// Multimodal decoder alone (generation): image_tokens [B, S, W], token_states
  /// [B, L, W] (encode_text(prefix).tokens) -> logits [B, L, V].
  torch::Tensor decode(const torch::Tensor& image_tokens, const torch::Tensor& token_states);

  /// Starts incremental decoding: images [N, 3, H, W] -> a cache with the image tokens
  /// and their cross-attention keys/values, length 0.
  DecodeCache start_decoding(const torch::Tensor& images);
  /// The same from already encoded image tokens [N, S, W].
  DecodeCache start_decoding_from_tokens(const torch::Tensor& image_tokens);
  /// Feeds new_tokens [N, T] (usually T = 1) at positions cache.length .. +T-1 (the
  /// positional embedding of each), extends the cache, and returns the logits [N, V] of
  /// the last fed position: equal to decode(image_tokens, encode_text(prefix).tokens)
  /// [:, -1] over the whole prefix. cache.length + T must be <= context_length.
  torch::Tensor decode_step(DecodeCache& cache, const torch::Tensor& new_tokens);

  /// The weight the logits use: text_decoder.text_projection [W, V], or with tied
  /// embeddings text.token_embedding.weight [V, W] (the same tensor, not a copy).
  torch::Tensor output_projection() const;

  CoCaConfig config;
  VisionTransformer visual{nullptr};
  TextTransformer text{nullptr};
  MultimodalDecoder text_decoder{nullptr};
  torch::Tensor logit_scale;  ///< [] log of the inverse temperature, init ln(1/0.07)

 private:
  CoCaOutput forward_encoded(const ImageEncoding& image, const torch::Tensor& text);
};
TORCH_MODULE(CoCa);

}  // namespace coca::model
