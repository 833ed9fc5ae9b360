#include "coca/model/multimodal_decoder.h"

#include <torch/torch.h>

#include <cmath>

#include "coca/model/text_decoder.h"
#include "model/detail/checkpoint.h"

namespace coca::model {

MultimodalDecoderImpl::MultimodalDecoderImpl(const CoCaConfig& config_) : config(config_) {
  reset();
}

void MultimodalDecoderImpl::reset() {
  const auto& m = config.multimodal;
  const int64_t w = config.text.width;
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  if (config.layout == "open_clip") {
    TORCH_CHECK(!m.tie_embeddings,
                "MultimodalDecoder: open_clip layout has an untied text_projection "
                "(model.multimodal.tie_embeddings must be false)");
    cross_attn = register_module("cross_attn", torch::nn::ModuleList());
    for (int64_t i = 0; i < m.layers; ++i) {
      resblocks->push_back(ResidualAttentionBlock(BlockOptions{w, m.heads, m.mlp_dim, false}));
      cross_attn->push_back(ResidualAttentionBlock(BlockOptions{w, m.heads, m.mlp_dim, true}));
    }
  } else {
    for (int64_t i = 0; i < m.layers; ++i) {
      resblocks->push_back(DecoderLayer(BlockOptions{w, m.heads, m.mlp_dim, true}));
    }
  }
  ln_final = register_module("ln_final", make_layer_norm(w));
  if (!m.tie_embeddings) {
    text_projection =
        register_parameter("text_projection", torch::empty({w, config.text.vocab_size}));
  }
  reset_parameters();
}

void MultimodalDecoderImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const int64_t w = config.text.width;
  const int64_t layers = config.multimodal.layers;
  init_block_weights(*resblocks, w, layers);
  if (cross_attn) init_block_weights(*cross_attn, w, layers);
  if (text_projection.defined()) text_projection.normal_(0.0, std::pow(static_cast<double>(w), -0.5));
}

torch::Tensor MultimodalDecoderImpl::forward(const torch::Tensor& image_tokens,
                                             const torch::Tensor& token_states,
                                             const torch::Tensor& output_weight) {
  const int64_t w = config.text.width;
  TORCH_CHECK(token_states.dim() == 3 && token_states.size(2) == w,
              "MultimodalDecoder: expected token_states [B, L, ", w, "], got ",
              token_states.sizes());
  TORCH_CHECK(image_tokens.dim() == 3 && image_tokens.size(2) == w &&
                  image_tokens.size(0) == token_states.size(0),
              "MultimodalDecoder: expected image_tokens [", token_states.size(0), ", S, ", w,
              "], got ", image_tokens.sizes());
  TORCH_CHECK(tied() == output_weight.defined(),
              "MultimodalDecoder: output_weight must be given exactly when embeddings are tied");
  const auto mask = causal_mask(token_states.size(1), token_states.options());
  const bool checkpointing =
      config.multimodal.checkpoint_activations && is_training() && torch::GradMode::is_enabled();

  auto x = token_states;
  for (size_t i = 0; i < resblocks->size(); ++i) {
    std::function<torch::Tensor(const std::vector<torch::Tensor>&)> layer;
    if (cross_attn) {
      auto self_block = resblocks->ptr<ResidualAttentionBlockImpl>(i);
      auto cross_block = cross_attn->ptr<ResidualAttentionBlockImpl>(i);
      layer = [self_block, cross_block, mask](const std::vector<torch::Tensor>& in) {
        return cross_block->forward(self_block->forward(in[0], {}, mask), in[1]);
      };
    } else {
      auto block = resblocks->ptr<DecoderLayerImpl>(i);
      layer = [block, mask](const std::vector<torch::Tensor>& in) {
        return block->forward(in[0], in[1], mask);
      };
    }
    x = checkpointing ? detail::checkpoint(layer, {x, image_tokens}) : layer({x, image_tokens});
  }
  x = ln_final->forward(x);
  return tied() ? torch::matmul(x, output_weight.t()) : torch::matmul(x, text_projection);
}

}  // namespace coca::model
