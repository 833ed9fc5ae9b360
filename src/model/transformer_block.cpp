#include "coca/model/transformer_block.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "model/detail/checkpoint.h"

namespace coca::model {

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  const auto dtype = weight.defined() ? weight.scalar_type() : x.scalar_type();
  return torch::nn::LayerNormImpl::forward(x.scalar_type() == dtype ? x : x.to(dtype));
}

LayerNorm make_layer_norm(int64_t width) {
  return LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5));
}

// ---------------------------------------------------------------------------

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(BlockOptions options_)
    : options(options_) {
  reset();
}

void ResidualAttentionBlockImpl::reset() {
  ln_1 = register_module("ln_1", make_layer_norm(options.width));
  attn = register_module("attn", MultiheadAttention(AttentionOptions(options.width, options.heads)));
  if (options.cross_attention) {
    ln_1_kv = register_module("ln_1_kv", make_layer_norm(options.width));
  }
  ln_2 = register_module("ln_2", make_layer_norm(options.width));
  mlp = register_module("mlp", Mlp(options.width, options.mlp_dim));
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x,
                                                  const torch::Tensor& memory,
                                                  const torch::Tensor& attn_mask) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options.width,
              "ResidualAttentionBlock: expected x [B, T, ", options.width, "], got ", x.sizes());
  const auto q = ln_1->forward(x);
  torch::Tensor a;
  if (options.cross_attention) {
    TORCH_CHECK(memory.defined(), "ResidualAttentionBlock: cross-attention block needs a memory");
    const auto kv = ln_1_kv->forward(memory);
    a = attn->forward(q, kv, kv, attn_mask);
  } else {
    a = attn->forward(q, q, q, attn_mask);
  }
  auto y = x + a;
  return y + mlp->forward(ln_2->forward(y));
}

torch::Tensor ResidualAttentionBlockImpl::forward_cached(const torch::Tensor& x,
                                                         torch::Tensor& cache_k,
                                                         torch::Tensor& cache_v) {
  TORCH_CHECK(!options.cross_attention,
              "ResidualAttentionBlock: forward_cached is for self-attention blocks");
  auto y = x + attn->forward_cached(ln_1->forward(x), cache_k, cache_v);
  return y + mlp->forward(ln_2->forward(y));
}

std::pair<torch::Tensor, torch::Tensor> ResidualAttentionBlockImpl::memory_kv(
    const torch::Tensor& memory) {
  TORCH_CHECK(options.cross_attention,
              "ResidualAttentionBlock: memory_kv is for cross-attention blocks");
  const auto kv = ln_1_kv->forward(memory);
  return attn->project_kv(kv, kv);
}

torch::Tensor ResidualAttentionBlockImpl::forward_memory_kv(const torch::Tensor& x,
                                                            const torch::Tensor& k,
                                                            const torch::Tensor& v) {
  auto y = x + attn->attend(ln_1->forward(x), k, v);
  return y + mlp->forward(ln_2->forward(y));
}

// ---------------------------------------------------------------------------

DecoderLayerImpl::DecoderLayerImpl(BlockOptions options_) : options(options_) { reset(); }

void DecoderLayerImpl::reset() {
  const AttentionOptions attn_options(options.width, options.heads);
  ln_1 = register_module("ln_1", make_layer_norm(options.width));
  attn = register_module("attn", MultiheadAttention(attn_options));
  ln_cross = register_module("ln_cross", make_layer_norm(options.width));
  ln_cross_kv = register_module("ln_cross_kv", make_layer_norm(options.width));
  cross_attn = register_module("cross_attn", MultiheadAttention(attn_options));
  ln_2 = register_module("ln_2", make_layer_norm(options.width));
  mlp = register_module("mlp", Mlp(options.width, options.mlp_dim));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                        const torch::Tensor& attn_mask) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options.width,
              "DecoderLayer: expected x [B, T, ", options.width, "], got ", x.sizes());
  TORCH_CHECK(memory.dim() == 3 && memory.size(2) == options.width,
              "DecoderLayer: expected memory [B, S, ", options.width, "], got ", memory.sizes());
  const auto q = ln_1->forward(x);
  auto y = x + attn->forward(q, q, q, attn_mask);
  const auto kv = ln_cross_kv->forward(memory);
  y = y + cross_attn->forward(ln_cross->forward(y), kv, kv);
  return y + mlp->forward(ln_2->forward(y));
}

std::pair<torch::Tensor, torch::Tensor> DecoderLayerImpl::memory_kv(const torch::Tensor& memory) {
  const auto kv = ln_cross_kv->forward(memory);
  return cross_attn->project_kv(kv, kv);
}

torch::Tensor DecoderLayerImpl::forward_cached(const torch::Tensor& x, torch::Tensor& cache_k,
                                               torch::Tensor& cache_v,
                                               const torch::Tensor& memory_k,
                                               const torch::Tensor& memory_v) {
  auto y = x + attn->forward_cached(ln_1->forward(x), cache_k, cache_v);
  y = y + cross_attn->attend(ln_cross->forward(y), memory_k, memory_v);
  return y + mlp->forward(ln_2->forward(y));
}

// ---------------------------------------------------------------------------

TransformerImpl::TransformerImpl(BlockOptions options_, int64_t layers_,
                                 bool checkpoint_activations_)
    : options(options_), layers(layers_), checkpoint_activations(checkpoint_activations_) {
  reset();
}

void TransformerImpl::reset() {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualAttentionBlock(options));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask) {
  const bool checkpointing = checkpoint_activations && is_training() && torch::GradMode::is_enabled();
  auto y = x;
  for (const auto& module : *resblocks) {
    auto block = std::dynamic_pointer_cast<ResidualAttentionBlockImpl>(module);
    if (checkpointing) {
      y = detail::checkpoint(
          [block, attn_mask](const std::vector<torch::Tensor>& in) {
            return block->forward(in[0], {}, attn_mask);
          },
          {y});
    } else {
      y = block->forward(y, {}, attn_mask);
    }
  }
  return y;
}

// ---------------------------------------------------------------------------

void init_block_weights(torch::nn::Module& block, int64_t width, int64_t layers) {
  torch::NoGradGuard no_grad;
  const double attn_std = std::pow(static_cast<double>(width), -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(layers), -0.5);
  const double fc_std = std::pow(2.0 * static_cast<double>(width), -0.5);
  for (const auto& m : block.modules(/*include_self=*/true)) {
    if (auto* a = m->as<MultiheadAttentionImpl>()) {
      if (a->packed()) {
        a->in_proj_weight.normal_(0.0, attn_std);
      } else {
        a->q_proj_weight.normal_(0.0, attn_std);
        a->k_proj_weight.normal_(0.0, attn_std);
        a->v_proj_weight.normal_(0.0, attn_std);
      }
      a->out_proj->weight.normal_(0.0, proj_std);
    } else if (auto* mlp = m->as<MlpImpl>()) {
      mlp->c_fc->weight.normal_(0.0, fc_std);
      mlp->c_proj->weight.normal_(0.0, proj_std);
    }
  }
}

}  // namespace coca::model
