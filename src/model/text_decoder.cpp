#include "coca/model/text_decoder.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace coca::model {

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<double>::infinity(), options).triu_(1);
}

torch::Tensor build_text_attention_mask(const torch::Tensor& text, int64_t pad_id, bool legacy,
                                        torch::ScalarType dtype) {
  TORCH_CHECK(text.dim() == 2, "build_text_attention_mask: expected text [B, T], got ",
              text.sizes());
  const int64_t b = text.size(0);
  const int64_t t = text.size(1);
  const auto options = torch::TensorOptions().dtype(dtype).device(text.device());
  const auto real = text.ne(pad_id);  // [B, T]
  const auto always = torch::ones({b, 1}, real.options());
  // Which keys (0..T) the [CLS] row may attend to.
  const auto keep = legacy ? torch::cat({always, real}, 1) : torch::cat({real, always}, 1);
  const auto cls_row = torch::zeros({b, t + 1}, options)
                           .masked_fill_(keep.logical_not(), -std::numeric_limits<double>::infinity());
  const auto rows = torch::cat({torch::zeros({b, t, t + 1}, options), cls_row.unsqueeze(1)}, 1);
  return rows + causal_mask(t + 1, options).unsqueeze(0);
}

TextTransformerImpl::TextTransformerImpl(const CoCaConfig& config_) : config(config_) { reset(); }

void TextTransformerImpl::reset() {
  const auto& t = config.text;
  token_embedding = register_module("token_embedding", torch::nn::Embedding(t.vocab_size, t.width));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({t.context_length + 1, t.width}));
  cls_emb = register_parameter("cls_emb", torch::empty({t.width}));
  transformer = register_module(
      "transformer", Transformer(BlockOptions{t.width, t.heads, t.mlp_dim, false}, t.layers,
                                 t.checkpoint_activations));
  ln_final = register_module("ln_final", make_layer_norm(t.width));
  text_projection = register_parameter("text_projection", torch::empty({t.width, config.embed_dim}));
  reset_parameters();
}

void TextTransformerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const auto& t = config.text;
  token_embedding->weight.normal_(0.0, 0.02);
  positional_embedding.normal_(0.0, 0.01);
  cls_emb.normal_(0.0, 0.01);
  init_block_weights(*transformer, t.width, t.layers);
  text_projection.normal_(0.0, std::pow(static_cast<double>(t.width), -0.5));
}

TextEncoding TextTransformerImpl::forward(const torch::Tensor& text) {
  const auto& cfg = config.text;
  TORCH_CHECK(text.dim() == 2 && text.scalar_type() == torch::kLong,
              "TextTransformer: expected text [B, T] int64, got ", text.sizes(), " ",
              text.scalar_type());
  TORCH_CHECK(text.size(1) >= 1 && text.size(1) <= cfg.context_length,
              "TextTransformer: text length ", text.size(1), " must be in [1, context_length = ",
              cfg.context_length, "]");
  const int64_t b = text.size(0);
  const int64_t t = text.size(1);
  auto x = token_embedding->forward(text);  // [B, T, W]
  x = torch::cat({x, cls_emb.view({1, 1, -1}).expand({b, 1, -1}).to(x.dtype())}, 1);
  x = x + positional_embedding.narrow(0, 0, t + 1).to(x.dtype());
  const auto mask = build_text_attention_mask(text, cfg.pad_id, cfg.legacy_cls_mask, x.scalar_type());
  x = transformer->forward(x, mask);  // [B, T + 1, W]
  TextEncoding out;
  out.latent = torch::matmul(ln_final->forward(x.select(1, t)), text_projection);
  out.tokens = x.narrow(1, 0, t);
  return out;
}

}  // namespace coca::model
