#include "coca/model/attention.h"

#include <torch/torch.h>

#include <limits>

#include "model/detail/sdpa.h"

namespace coca::model {

torch::Tensor merge_attention_masks(const torch::Tensor& attn_mask,
                                    const torch::Tensor& key_padding_mask,
                                    torch::ScalarType dtype) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  torch::Tensor mask;
  if (attn_mask.defined()) {
    TORCH_CHECK(attn_mask.dim() == 2 || attn_mask.dim() == 3,
                "MultiheadAttention: attn_mask must be [T, S] or [B, T, S], got ",
                attn_mask.sizes());
    if (attn_mask.scalar_type() == torch::kBool) {
      mask = torch::zeros(attn_mask.sizes(), attn_mask.options().dtype(dtype))
                 .masked_fill_(attn_mask, neg_inf);
    } else {
      mask = attn_mask.to(dtype);
    }
    if (mask.dim() == 3) mask = mask.unsqueeze(1);  // [B, 1, T, S]: same for every head
  }
  if (key_padding_mask.defined()) {
    TORCH_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.scalar_type() == torch::kBool,
                "MultiheadAttention: key_padding_mask must be bool [B, S], got ",
                key_padding_mask.sizes(), " ", key_padding_mask.scalar_type());
    auto pad = torch::zeros(key_padding_mask.sizes(), key_padding_mask.options().dtype(dtype))
                   .masked_fill_(key_padding_mask, neg_inf)
                   .view({key_padding_mask.size(0), 1, 1, key_padding_mask.size(1)});
    mask = mask.defined() ? mask + pad : pad;
  }
  return mask;
}

MultiheadAttentionImpl::MultiheadAttentionImpl(AttentionOptions options_)
    : options(std::move(options_)) {
  reset();
}

void MultiheadAttentionImpl::reset() {
  const int64_t d = options.embed_dim;
  TORCH_CHECK(d > 0 && options.heads > 0 && d % options.heads == 0,
              "MultiheadAttention: embed_dim (", d, ") must be a positive multiple of heads (",
              options.heads, ")");
  const int64_t kdim = options.kdim > 0 ? options.kdim : d;
  const int64_t vdim = options.vdim > 0 ? options.vdim : d;
  packed_ = kdim == d && vdim == d;
  if (packed_) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d, d}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", torch::empty({d, d}));
    k_proj_weight = register_parameter("k_proj_weight", torch::empty({d, kdim}));
    v_proj_weight = register_parameter("v_proj_weight", torch::empty({d, vdim}));
  }
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * d}));
  out_proj = register_module("out_proj", torch::nn::Linear(d, d));
  reset_parameters();
}

void MultiheadAttentionImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  if (packed_) {
    torch::nn::init::xavier_uniform_(in_proj_weight);
  } else {
    torch::nn::init::xavier_uniform_(q_proj_weight);
    torch::nn::init::xavier_uniform_(k_proj_weight);
    torch::nn::init::xavier_uniform_(v_proj_weight);
  }
  in_proj_bias.zero_();
  out_proj->bias.zero_();
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key,
                                              const torch::Tensor& value,
                                              const torch::Tensor& attn_mask,
                                              const torch::Tensor& key_padding_mask) {
  const int64_t d = options.embed_dim;
  const int64_t h = options.heads;
  TORCH_CHECK(query.dim() == 3 && query.size(2) == d,
              "MultiheadAttention: expected query [B, T, ", d, "], got ", query.sizes());
  TORCH_CHECK(key.dim() == 3 && value.dim() == 3 && key.size(0) == query.size(0) &&
                  value.size(0) == query.size(0) && key.size(1) == value.size(1),
              "MultiheadAttention: key ", key.sizes(), " and value ", value.sizes(),
              " must be [B, S, *] with B of query ", query.sizes());
  const int64_t b = query.size(0);
  const int64_t t = query.size(1);
  const int64_t s = key.size(1);
  const int64_t dh = d / h;

  // [B, L, k*D] -> k tensors [B, H, L, Dh], as strided views (no copies).
  auto split_heads = [&](const torch::Tensor& x, int64_t len, int64_t parts) {
    return x.view({b, len, parts, h, dh}).permute({2, 0, 3, 1, 4}).unbind(0);
  };

  torch::Tensor q, k, v;
  const bool self_attention = query.is_same(key) && key.is_same(value);
  if (packed_ && self_attention) {
    const auto qkv = split_heads(torch::nn::functional::linear(query, in_proj_weight, in_proj_bias),
                                 t, 3);
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else if (packed_ && key.is_same(value)) {
    q = split_heads(torch::nn::functional::linear(query, in_proj_weight.narrow(0, 0, d),
                                                  in_proj_bias.narrow(0, 0, d)),
                    t, 1)[0];
    const auto kv = split_heads(
        torch::nn::functional::linear(key, in_proj_weight.narrow(0, d, 2 * d),
                                      in_proj_bias.narrow(0, d, 2 * d)),
        s, 2);
    k = kv[0];
    v = kv[1];
  } else {
    const auto wq = packed_ ? in_proj_weight.narrow(0, 0, d) : q_proj_weight;
    const auto wk = packed_ ? in_proj_weight.narrow(0, d, d) : k_proj_weight;
    const auto wv = packed_ ? in_proj_weight.narrow(0, 2 * d, d) : v_proj_weight;
    TORCH_CHECK(key.size(2) == wk.size(1) && value.size(2) == wv.size(1),
                "MultiheadAttention: expected key width ", wk.size(1), " and value width ",
                wv.size(1), ", got ", key.sizes(), " and ", value.sizes());
    q = split_heads(torch::nn::functional::linear(query, wq, in_proj_bias.narrow(0, 0, d)), t,
                    1)[0];
    k = split_heads(torch::nn::functional::linear(key, wk, in_proj_bias.narrow(0, d, d)), s,
                    1)[0];
    v = split_heads(torch::nn::functional::linear(value, wv, in_proj_bias.narrow(0, 2 * d, d)),
                    s, 1)[0];
  }

  const auto mask = merge_attention_masks(attn_mask, key_padding_mask, q.scalar_type());
  auto out = detail::scaled_dot_product_attention(q, k, v, mask);  // [B, H, T, Dh]
  return out_proj->forward(out.transpose(1, 2).reshape({b, t, d}));
}

std::pair<torch::Tensor, torch::Tensor> MultiheadAttentionImpl::project_kv(
    const torch::Tensor& key, const torch::Tensor& value) {
  const int64_t d = options.embed_dim;
  const int64_t h = options.heads;
  TORCH_CHECK(key.dim() == 3 && value.dim() == 3 && key.size(0) == value.size(0) &&
                  key.size(1) == value.size(1),
              "MultiheadAttention: key ", key.sizes(), " and value ", value.sizes(),
              " must be [B, S, *]");
  const auto wk = packed_ ? in_proj_weight.narrow(0, d, d) : k_proj_weight;
  const auto wv = packed_ ? in_proj_weight.narrow(0, 2 * d, d) : v_proj_weight;
  const int64_t b = key.size(0);
  const int64_t s = key.size(1);
  auto heads = [&](const torch::Tensor& x) {
    return x.view({b, s, h, d / h}).transpose(1, 2);  // [B, H, S, Dh]
  };
  return {heads(torch::nn::functional::linear(key, wk, in_proj_bias.narrow(0, d, d))),
          heads(torch::nn::functional::linear(value, wv, in_proj_bias.narrow(0, 2 * d, d)))};
}

torch::Tensor MultiheadAttentionImpl::attend(const torch::Tensor& query, const torch::Tensor& k,
                                             const torch::Tensor& v,
                                             const torch::Tensor& attn_mask) {
  const int64_t d = options.embed_dim;
  const int64_t h = options.heads;
  TORCH_CHECK(query.dim() == 3 && query.size(2) == d,
              "MultiheadAttention: expected query [B, T, ", d, "], got ", query.sizes());
  TORCH_CHECK(k.dim() == 4 && k.size(0) == query.size(0) && k.size(1) == h && k.sizes() == v.sizes(),
              "MultiheadAttention: expected projected k/v [", query.size(0), ", ", h,
              ", S, Dh], got ", k.sizes(), " and ", v.sizes());
  const int64_t b = query.size(0);
  const int64_t t = query.size(1);
  const auto wq = packed_ ? in_proj_weight.narrow(0, 0, d) : q_proj_weight;
  const auto q = torch::nn::functional::linear(query, wq, in_proj_bias.narrow(0, 0, d))
                     .view({b, t, h, d / h})
                     .transpose(1, 2);
  const auto mask = merge_attention_masks(attn_mask, {}, q.scalar_type());
  auto out = detail::scaled_dot_product_attention(q, k, v, mask);  // [B, H, T, Dh]
  return out_proj->forward(out.transpose(1, 2).reshape({b, t, d}));
}

torch::Tensor MultiheadAttentionImpl::forward_cached(const torch::Tensor& x, torch::Tensor& cache_k,
                                                     torch::Tensor& cache_v) {
  auto kv = project_kv(x, x);
  const int64_t past = cache_k.defined() ? cache_k.size(2) : 0;
  cache_k = past > 0 ? torch::cat({cache_k, kv.first}, 2) : kv.first;
  cache_v = past > 0 ? torch::cat({cache_v, kv.second}, 2) : kv.second;
  const int64_t t = x.size(1);
  torch::Tensor mask;  // one new position sees every cached key: no mask needed
  if (t > 1) {
    mask = torch::full({t, past + t}, -std::numeric_limits<double>::infinity(), x.options())
               .triu_(past + 1);
  }
  return attend(x, cache_k, cache_v, mask);
}

}  // namespace coca::model
