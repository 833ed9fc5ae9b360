#include "coca/model/vision_transformer.h"

#include <torch/torch.h>

#include <cmath>

namespace coca::model {

torch::Tensor interpolate_positional_embedding(const torch::Tensor& pos, int64_t prefix_tokens,
                                               int64_t old_h, int64_t old_w, int64_t new_h,
                                               int64_t new_w) {
  TORCH_CHECK(pos.dim() == 2 && pos.size(0) == prefix_tokens + old_h * old_w,
              "interpolate_positional_embedding: expected [", prefix_tokens + old_h * old_w,
              ", D], got ", pos.sizes());
  const int64_t d = pos.size(1);
  const auto prefix = pos.narrow(0, 0, prefix_tokens);
  auto grid = pos.narrow(0, prefix_tokens, old_h * old_w)
                  .reshape({1, old_h, old_w, d})
                  .permute({0, 3, 1, 2});  // [1, D, h, w]
  grid = torch::nn::functional::interpolate(
      grid, torch::nn::functional::InterpolateFuncOptions()
                .size(std::vector<int64_t>{new_h, new_w})
                .mode(torch::kBicubic)
                .align_corners(false)
                .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({new_h * new_w, d});
  return prefix_tokens > 0 ? torch::cat({prefix, grid}, 0) : grid;
}

StemLayerImpl::StemLayerImpl(int64_t in, int64_t out) : in_channels(in), out_channels(out) {
  reset();
}

void StemLayerImpl::reset() {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels,
                                                                            out_channels, 3)
                                                       .stride(2)
                                                       .padding(1)
                                                       .bias(false)));
  norm = register_module("norm", torch::nn::BatchNorm2d(out_channels));
}

torch::Tensor StemLayerImpl::forward(const torch::Tensor& x) {
  // Under autocast the convolution runs in bf16; BatchNorm normalises (and updates its
  // running statistics) in its parameters' float32, as LayerNorm does.
  return torch::relu(norm->forward(conv->forward(x).to(norm->weight.scalar_type())));
}

VisionTransformerImpl::VisionTransformerImpl(const CoCaConfig& config_) : config(config_) {
  reset();
}

void VisionTransformerImpl::reset() {
  const auto& v = config.vision;
  const int64_t dv = v.width;
  const int64_t dt = config.text.width;
  TORCH_CHECK(v.patch_size > 0 && v.image_size % v.patch_size == 0,
              "VisionTransformer: image_size (", v.image_size, ") must be a multiple of patch_size (",
              v.patch_size, ")");
  TORCH_CHECK(v.stem == "patch" || v.stem == "conv", "VisionTransformer: unknown stem '", v.stem,
              "'");
  TORCH_CHECK(v.stem == "patch" || (v.patch_size >= 2 && (v.patch_size & (v.patch_size - 1)) == 0 &&
                                    dv % (v.patch_size / 2) == 0),
              "VisionTransformer: the conv stem needs a power-of-two patch_size and width divisible "
              "by patch_size / 2, got patch_size ", v.patch_size, ", width ", dv);
  const int64_t grid = v.image_size / v.patch_size;
  int64_t in = 3;
  if (v.stem == "conv") {
    stem = register_module("stem", torch::nn::ModuleList());
    for (const int64_t out : conv_stem_channels(v)) {
      stem->push_back(StemLayer(in, out));
      in = out;
    }
  }
  const int64_t kernel = stem ? 1 : v.patch_size;
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, dv, kernel)
                                     .stride(kernel)
                                     .bias(v.patch_bias)));
  if (v.class_token) class_embedding = register_parameter("class_embedding", torch::empty({dv}));
  positional_embedding = register_parameter(
      "positional_embedding", torch::empty({grid * grid + (v.class_token ? 1 : 0), dv}));
  ln_pre = register_module("ln_pre", make_layer_norm(dv));
  transformer = register_module(
      "transformer", Transformer(BlockOptions{dv, v.heads, v.mlp_dim, false}, v.layers,
                                 v.checkpoint_activations));

  const auto& p = config.pooler;
  TORCH_CHECK(p.mode == "single" || p.mode == "cascade" || p.mode == "parallel",
              "VisionTransformer: unknown pooler mode '", p.mode, "'");
  TORCH_CHECK(p.mode != "single" || p.queries >= 2,
              "VisionTransformer: pooler mode 'single' needs queries >= 2 (one for the embedding), got ",
              p.queries);
  attn_pool = register_module("attn_pool", AttentionPool(AttentionPoolOptions{dt, dv, p.heads,
                                                                              p.queries}));
  if (p.mode != "single") {
    attn_pool_contrastive = register_module(
        "attn_pool_contrastive",
        AttentionPool(AttentionPoolOptions{dt, p.mode == "cascade" ? dt : dv, p.heads, 1}));
  }
  ln_post = register_module("ln_post", make_layer_norm(dt));
  proj = register_parameter("proj", torch::empty({dt, config.embed_dim}));
  reset_parameters();
}

void VisionTransformerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double scale = std::pow(static_cast<double>(config.vision.width), -0.5);
  if (class_embedding.defined()) class_embedding.normal_(0.0, scale);
  positional_embedding.normal_(0.0, scale);
  proj.normal_(0.0, scale);
}

torch::Tensor VisionTransformerImpl::embed(const torch::Tensor& images) {
  const auto& v = config.vision;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3,
              "VisionTransformer: expected images [B, 3, H, W], got ", images.sizes());
  TORCH_CHECK(images.size(2) % v.patch_size == 0 && images.size(3) % v.patch_size == 0,
              "VisionTransformer: image sides ", images.sizes(), " must be multiples of patch_size ",
              v.patch_size);
  auto x = images;
  if (stem) {
    for (const auto& layer : *stem) x = layer->as<StemLayer>()->forward(x);
  }
  return conv1->forward(x).flatten(2).transpose(1, 2);  // [B, N, Dv]
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images) {
  const auto patches = embed(images);
  return forward_patches(patches, images.size(2) / config.vision.patch_size,
                         images.size(3) / config.vision.patch_size);
}

torch::Tensor VisionTransformerImpl::forward_patches(const torch::Tensor& patches, int64_t gh,
                                                     int64_t gw) {
  const auto& v = config.vision;
  TORCH_CHECK(patches.dim() == 3 && patches.size(1) == gh * gw && patches.size(2) == v.width,
              "VisionTransformer: expected patches [B, ", gh * gw, ", ", v.width, "], got ",
              patches.sizes());
  const int64_t b = patches.size(0);
  const int64_t grid = v.image_size / v.patch_size;
  auto x = patches;
  if (class_embedding.defined()) {
    x = torch::cat({class_embedding.view({1, 1, -1}).expand({b, 1, -1}).to(x.dtype()), x}, 1);
  }
  auto pos = positional_embedding;
  if (gh != grid || gw != grid) {
    pos = interpolate_positional_embedding(pos, class_embedding.defined() ? 1 : 0, grid, grid, gh,
                                           gw);
  }
  x = ln_pre->forward(x + pos.to(x.dtype()));
  return transformer->forward(x);
}

ImageEncoding VisionTransformerImpl::forward(const torch::Tensor& images) {
  return pool(forward_features(images));
}

ImageEncoding VisionTransformerImpl::pool(const torch::Tensor& x) {
  ImageEncoding out;
  if (!attn_pool_contrastive) {
    const auto pooled = ln_post->forward(attn_pool->forward(x));  // [B, Q, Dt]
    out.latent = torch::matmul(pooled.select(1, 0), proj);
    out.tokens = pooled.narrow(1, 1, pooled.size(1) - 1);
    return out;
  }
  out.tokens = attn_pool->forward(x);
  const auto& source = config.pooler.mode == "cascade" ? out.tokens : x;
  const auto pooled = attn_pool_contrastive->forward(source).select(1, 0);  // [B, Dt]
  out.latent = torch::matmul(ln_post->forward(pooled), proj);
  return out;
}

}  // namespace coca::model
