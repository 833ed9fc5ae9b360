#include "coca/eval/coca_step_model.h"

#include <torch/torch.h>

#include <limits>

namespace coca::eval {

CoCaStepModel::CoCaStepModel(model::CoCa& model, const torch::Tensor& images, bool kv_cache)
    : model_(model), kv_cache_(kv_cache) {
  torch::NoGradGuard no_grad;
  start(model_->encode_image(images).tokens);
}

CoCaStepModel CoCaStepModel::from_image_tokens(model::CoCa& model,
                                               const torch::Tensor& image_tokens, bool kv_cache) {
  CoCaStepModel out(model, kv_cache);
  torch::NoGradGuard no_grad;
  out.start(image_tokens);
  return out;
}

void CoCaStepModel::start(const torch::Tensor& image_tokens) {
  if (kv_cache_) {
    cache_ = model_->start_decoding_from_tokens(image_tokens);
  } else {
    image_tokens_ = image_tokens;
  }
}

torch::Tensor CoCaStepModel::next_logits(const torch::Tensor& tokens) {
  auto logits = compute_logits(tokens);
  if (vocab_limit_ > 0 && vocab_limit_ < logits.size(1)) {
    logits.narrow(1, vocab_limit_, logits.size(1) - vocab_limit_)
        .fill_(-std::numeric_limits<float>::infinity());
  }
  return logits;
}

torch::Tensor CoCaStepModel::compute_logits(const torch::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) >= 1,
              "CoCaStepModel: expected tokens [N, L], got ", tokens.sizes());
  const auto& device = kv_cache_ ? cache_.image_tokens.device() : image_tokens_.device();
  if (!kv_cache_) {
    const auto states = model_->encode_text(tokens.to(device)).tokens;  // [N, L, W]
    return model_->decode(image_tokens_, states).select(1, tokens.size(1) - 1);
  }
  TORCH_CHECK(tokens.size(1) == cache_.length + 1, "CoCaStepModel: the cache holds ",
              cache_.length, " positions, so the prefix must have ", cache_.length + 1,
              " tokens, got ", tokens.size(1));
  return model_->decode_step(cache_, tokens.narrow(1, tokens.size(1) - 1, 1).to(device));
}

void CoCaStepModel::select(const torch::Tensor& index) {
  if (kv_cache_) {
    cache_.select(index);
  } else {
    image_tokens_ = image_tokens_.index_select(0, index.to(image_tokens_.device(), torch::kLong));
  }
}

}  // namespace coca::eval
