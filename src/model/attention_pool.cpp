#include "coca/model/attention_pool.h"

#include <torch/torch.h>

#include "coca/model/transformer_block.h"

namespace coca::model {

AttentionPoolImpl::AttentionPoolImpl(AttentionPoolOptions options_) : options(options_) {
  reset();
}

void AttentionPoolImpl::reset() {
  query = register_parameter("query", torch::empty({options.queries, options.width}));
  AttentionOptions attn_options(options.width, options.heads);
  attn_options.kdim = options.context_width;
  attn_options.vdim = options.context_width;
  attn = register_module("attn", MultiheadAttention(attn_options));
  ln_q = register_module("ln_q", make_layer_norm(options.width));
  ln_k = register_module("ln_k", make_layer_norm(options.context_width));
  reset_parameters();
}

void AttentionPoolImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  query.normal_(0.0, 1.0);
}

torch::Tensor AttentionPoolImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(2) == options.context_width,
              "AttentionPool: expected tokens [B, N, ", options.context_width, "], got ",
              tokens.sizes());
  const auto kv = ln_k->forward(tokens);
  const auto q = ln_q->forward(query).unsqueeze(0).expand({tokens.size(0), -1, -1});
  return attn->forward(q, kv, kv);
}

}  // namespace coca::model
