// CoCa losses.
#include "coca/train/losses.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace coca::train {

namespace F = torch::nn::functional;

ContrastiveReduction parse_contrastive_reduction(const std::string& name) {
  if (name == "mean") return ContrastiveReduction::kMean;
  if (name == "sum") return ContrastiveReduction::kSum;
  throw std::invalid_argument("train.contrastive_reduction: expected mean | sum, got '" + name +
                              "'");
}

namespace {

void check_features(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 2, "contrastive_loss: expected ", what, " [B, E], got ", t.sizes());
}

}  // namespace

torch::Tensor contrastive_loss(const torch::Tensor& image_features,
                               const torch::Tensor& text_features,
                               const torch::Tensor& logit_scale,
                               ContrastiveReduction reduction) {
  return contrastive_loss(image_features, text_features, image_features, text_features,
                          logit_scale, 0, reduction);
}

torch::Tensor contrastive_loss(const torch::Tensor& image_local, const torch::Tensor& text_local,
                               const torch::Tensor& image_global,
                               const torch::Tensor& text_global,
                               const torch::Tensor& logit_scale, int64_t label_offset,
                               ContrastiveReduction reduction) {
  check_features(image_local, "image_local");
  check_features(text_local, "text_local");
  check_features(image_global, "image_global");
  check_features(text_global, "text_global");
  TORCH_CHECK(image_local.sizes() == text_local.sizes(),
              "contrastive_loss: image and text rows differ: ", image_local.sizes(), " vs ",
              text_local.sizes());
  TORCH_CHECK(image_global.sizes() == text_global.sizes(),
              "contrastive_loss: global image and text differ: ", image_global.sizes(), " vs ",
              text_global.sizes());
  TORCH_CHECK(image_local.size(1) == image_global.size(1),
              "contrastive_loss: local and global embedding widths differ");
  TORCH_CHECK(logit_scale.numel() == 1, "contrastive_loss: logit_scale must hold one value, got ",
              logit_scale.sizes());
  const int64_t b = image_local.size(0);
  TORCH_CHECK(label_offset >= 0 && label_offset + b <= image_global.size(0),
              "contrastive_loss: label_offset ", label_offset, " + ", b,
              " local rows exceed the ", image_global.size(0), " global columns");
  const auto scale = logit_scale.reshape({});
  auto logits_per_image = scale * image_local.matmul(text_global.t());  // [B_local, B_global]
  auto logits_per_text = scale * text_local.matmul(image_global.t());   // [B_local, B_global]
  auto labels = torch::arange(label_offset, label_offset + b,
                              torch::TensorOptions().dtype(torch::kLong).device(
                                  image_local.device()));
  auto l_i2t = F::cross_entropy(logits_per_image, labels);
  auto l_t2i = F::cross_entropy(logits_per_text, labels);
  auto sum = l_i2t + l_t2i;
  return reduction == ContrastiveReduction::kMean ? sum / 2 : sum;
}

CaptionLoss caption_loss(const torch::Tensor& logits, const torch::Tensor& text, int64_t pad_id,
                         double label_smoothing) {
  TORCH_CHECK(logits.dim() == 3, "caption_loss: expected logits [B, T-1, V], got ",
              logits.sizes());
  TORCH_CHECK(text.dim() == 2, "caption_loss: expected text [B, T], got ", text.sizes());
  TORCH_CHECK(logits.size(0) == text.size(0) && logits.size(1) == text.size(1) - 1,
              "caption_loss: logits ", logits.sizes(), " must be [B, T-1, V] for text ",
              text.sizes(), " (position j predicts token j + 1)");
  TORCH_CHECK(label_smoothing >= 0 && label_smoothing < 1,
              "caption_loss: label_smoothing must be in [0, 1), got ", label_smoothing);
  const int64_t v = logits.size(2);
  auto targets = text.slice(/*dim=*/1, /*start=*/1).reshape({-1}).to(torch::kLong);
  auto flat = logits.reshape({-1, v});
  auto per_token = F::cross_entropy(flat, targets,
                                    F::CrossEntropyFuncOptions()
                                        .ignore_index(pad_id)
                                        .label_smoothing(label_smoothing)
                                        .reduction(torch::kNone));
  auto mask = targets.ne(pad_id);
  CaptionLoss out;
  out.num_tokens = mask.sum().item<int64_t>();
  out.sum = per_token.masked_fill(mask.logical_not(), 0.0).sum();
  out.loss = out.sum / static_cast<double>(std::max<int64_t>(out.num_tokens, 1));
  return out;
}

CoCaLoss CoCaLoss::from_config(const TrainConfig& cfg, int64_t pad_id) {
  CoCaLoss loss;
  loss.lambda_con = cfg.lambda_con;
  loss.lambda_cap = cfg.lambda_cap;
  loss.reduction = parse_contrastive_reduction(cfg.contrastive_reduction);
  loss.label_smoothing = cfg.label_smoothing;
  loss.pad_id = pad_id;
  return loss;
}

CoCaLossParts CoCaLoss::operator()(const torch::Tensor& image_features,
                                   const torch::Tensor& text_features,
                                   const torch::Tensor& logit_scale,
                                   const torch::Tensor& logits, const torch::Tensor& text) const {
  CoCaLossParts parts;
  parts.contrastive =
      lambda_con * contrastive_loss(image_features, text_features, logit_scale, reduction);
  auto cap = caption_loss(logits, text, pad_id, label_smoothing);
  parts.caption = lambda_cap * cap.loss;
  parts.caption_tokens = cap.num_tokens;
  parts.total = parts.contrastive + parts.caption;
  return parts;
}

void clamp_logit_scale_(torch::Tensor& logit_scale, double max_scale) {
  TORCH_CHECK(max_scale >= 1.0, "clamp_logit_scale_: max_scale must be >= 1, got ", max_scale);
  torch::NoGradGuard no_grad;
  logit_scale.clamp_(0.0, std::log(max_scale));
}

}  // namespace coca::train
