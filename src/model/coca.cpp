#include "coca/model/coca.h"

#include <torch/torch.h>

namespace coca::model {

CoCaImpl::CoCaImpl(const CoCaConfig& config_) : config(config_) { reset(); }

void CoCaImpl::reset() {
  TORCH_CHECK(config.layout == "paper" || config.layout == "open_clip",
              "CoCa: unknown model.layout '", config.layout, "' (paper | open_clip)");
  // Submodule order matches open_clip's state dict: text, visual, text_decoder.
  logit_scale = register_parameter("logit_scale", torch::empty({}));
  text = register_module("text", TextTransformer(config));
  visual = register_module("visual", VisionTransformer(config));
  text_decoder = register_module("text_decoder", MultimodalDecoder(config));
  torch::NoGradGuard no_grad;
  logit_scale.fill_(config.init_logit_scale);
}

void CoCaImpl::reset_parameters() {
  // PyTorch defaults on every leaf first, then the attention layers (which zero their
  // out_proj bias), then the towers' explicit inits on top.
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::LinearImpl>()) linear->reset_parameters();
    if (auto* norm = m->as<torch::nn::LayerNormImpl>()) norm->reset_parameters();
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) conv->reset_parameters();
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) bn->reset_parameters();  // and its stats
    if (auto* emb = m->as<torch::nn::EmbeddingImpl>()) emb->reset_parameters();
  }
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* attn = m->as<MultiheadAttentionImpl>()) attn->reset_parameters();
    if (auto* pool = m->as<AttentionPoolImpl>()) pool->reset_parameters();
  }
  visual->reset_parameters();
  text->reset_parameters();
  text_decoder->reset_parameters();
  torch::NoGradGuard no_grad;
  logit_scale.fill_(config.init_logit_scale);
}

ImageEncoding CoCaImpl::encode_image(const torch::Tensor& images) { return visual->forward(images); }

TextEncoding CoCaImpl::encode_text(const torch::Tensor& text_ids) { return text->forward(text_ids); }

torch::Tensor CoCaImpl::output_projection() const {
  return text_decoder->tied() ? text->token_embedding->weight : text_decoder->text_projection;
}

torch::Tensor CoCaImpl::decode(const torch::Tensor& image_tokens,
                               const torch::Tensor& token_states) {
  return text_decoder->forward(image_tokens, token_states,
                               text_decoder->tied() ? text->token_embedding->weight
                                                    : torch::Tensor());
}

CoCaOutput CoCaImpl::forward(const torch::Tensor& images, const torch::Tensor& text_ids) {
  TORCH_CHECK(images.dim() == 4 && text_ids.dim() >= 1 && images.size(0) == text_ids.size(0),
              "CoCa: images ", images.sizes(), " and text ", text_ids.sizes(),
              " must have the same batch size");
  return forward_encoded(visual->forward(images), text_ids);
}

CoCaOutput CoCaImpl::forward_patches(const torch::Tensor& patches, const torch::Tensor& text_ids) {
  TORCH_CHECK(patches.dim() == 3 && text_ids.dim() >= 1 && patches.size(0) == text_ids.size(0),
              "CoCa: patches ", patches.sizes(), " and text ", text_ids.sizes(),
              " must have the same batch size");
  const int64_t grid = config.vision.image_size / config.vision.patch_size;
  return forward_encoded(visual->pool(visual->forward_patches(patches, grid, grid)), text_ids);
}

CoCaOutput CoCaImpl::forward_encoded(const ImageEncoding& image, const torch::Tensor& text_ids) {
  TORCH_CHECK(text_ids.dim() == 2 && text_ids.size(1) >= 2,
              "CoCa: expected text [B, T] with T >= 2, got ", text_ids.sizes());
  CoCaOutput out;
  auto txt = text->forward(text_ids);
  out.image_latent = image.latent;
  out.image_tokens = image.tokens;
  out.text_latent = txt.latent;
  out.text_tokens = txt.tokens;
  out.image_features = torch::nn::functional::normalize(
      image.latent, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  out.text_features = torch::nn::functional::normalize(
      txt.latent, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  // Teacher forcing: states of tokens 0..T-2 predict tokens 1..T-1 (labels text[:, 1:]).
  out.logits = decode(image.tokens, txt.tokens.narrow(1, 0, txt.tokens.size(1) - 1));
  out.logit_scale = logit_scale.exp();
  return out;
}

}  // namespace coca::model
