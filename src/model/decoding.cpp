// Incremental decoding with key/value caches (CoCaImpl::start_decoding / decode_step).
#include <torch/torch.h>

#include "coca/model/coca.h"

namespace coca::model {

void DecodeCache::select(const torch::Tensor& index) {
  const auto idx = index.to(image_tokens.device(), torch::kLong);
  image_tokens = image_tokens.index_select(0, idx);
  for (auto* list : {&text_k, &text_v, &decoder_k, &decoder_v, &memory_k, &memory_v}) {
    for (auto& t : *list) {
      if (t.defined()) t = t.index_select(0, idx);
    }
  }
}

DecodeCache CoCaImpl::start_decoding(const torch::Tensor& images) {
  return start_decoding_from_tokens(visual->forward(images).tokens);
}

DecodeCache CoCaImpl::start_decoding_from_tokens(const torch::Tensor& image_tokens) {
  const int64_t w = config.text.width;
  TORCH_CHECK(image_tokens.dim() == 3 && image_tokens.size(2) == w,
              "CoCa::start_decoding: expected image_tokens [N, S, ", w, "], got ",
              image_tokens.sizes());
  DecodeCache cache;
  cache.image_tokens = image_tokens;
  const auto text_layers = text->transformer->resblocks->size();
  cache.text_k.resize(text_layers);
  cache.text_v.resize(text_layers);
  const auto& dec = text_decoder;
  const auto layers = dec->resblocks->size();
  cache.decoder_k.resize(layers);
  cache.decoder_v.resize(layers);
  for (size_t i = 0; i < layers; ++i) {
    std::pair<torch::Tensor, torch::Tensor> kv;
    if (dec->cross_attn) {
      kv = dec->cross_attn->ptr<ResidualAttentionBlockImpl>(i)->memory_kv(image_tokens);
    } else {
      kv = dec->resblocks->ptr<DecoderLayerImpl>(i)->memory_kv(image_tokens);
    }
    cache.memory_k.push_back(kv.first);
    cache.memory_v.push_back(kv.second);
  }
  return cache;
}

torch::Tensor CoCaImpl::decode_step(DecodeCache& cache, const torch::Tensor& new_tokens) {
  TORCH_CHECK(cache.image_tokens.defined(), "CoCa::decode_step: cache not started");
  TORCH_CHECK(new_tokens.dim() == 2 && new_tokens.scalar_type() == torch::kLong &&
                  new_tokens.size(0) == cache.rows() && new_tokens.size(1) >= 1,
              "CoCa::decode_step: expected new_tokens [", cache.rows(), ", T] int64, got ",
              new_tokens.sizes(), " ", new_tokens.scalar_type());
  const int64_t t = new_tokens.size(1);
  const int64_t start = cache.length;
  TORCH_CHECK(start + t <= config.text.context_length, "CoCa::decode_step: position ",
              start + t - 1, " is beyond context_length ", config.text.context_length);
  // Unimodal text decoder: token embedding + positional embedding of the absolute
  // positions, causal self-attention over the cached prefix.
  auto x = text->token_embedding->forward(new_tokens);
  x = x + text->positional_embedding.narrow(0, start, t).to(x.dtype());
  auto& blocks = *text->transformer->resblocks;
  for (size_t i = 0; i < blocks.size(); ++i) {
    x = blocks.ptr<ResidualAttentionBlockImpl>(i)->forward_cached(x, cache.text_k[i],
                                                                   cache.text_v[i]);
  }
  // Multimodal decoder on the new token states (no ln_final, as encode_text's tokens).
  auto& dec = text_decoder;
  for (size_t i = 0; i < dec->resblocks->size(); ++i) {
    if (dec->cross_attn) {
      x = dec->resblocks->ptr<ResidualAttentionBlockImpl>(i)->forward_cached(
          x, cache.decoder_k[i], cache.decoder_v[i]);
      x = dec->cross_attn->ptr<ResidualAttentionBlockImpl>(i)->forward_memory_kv(
          x, cache.memory_k[i], cache.memory_v[i]);
    } else {
      x = dec->resblocks->ptr<DecoderLayerImpl>(i)->forward_cached(
          x, cache.decoder_k[i], cache.decoder_v[i], cache.memory_k[i], cache.memory_v[i]);
    }
  }
  cache.length = start + t;
  const auto last = dec->ln_final->forward(x.select(1, t - 1));  // [N, W]
  return dec->tied() ? torch::matmul(last, text->token_embedding->weight.t())
                     : torch::matmul(last, dec->text_projection);
}

}  // namespace coca::model
