// CoCa losses (arXiv 2205.01917 §3.2): L = lambda_con * L_con + lambda_cap * L_cap with the
// symmetric InfoNCE contrastive loss (Eq. 2) and the teacher-forced captioning loss (Eq. 3),
// plus the logit-scale clamp open_clip applies after each step.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "coca/train/train_config.h"

namespace coca::train {

/// How the two contrastive directions are combined.
enum class ContrastiveReduction {
  kMean,  ///< (CE_image->text + CE_text->image) / 2, each a mean over rows (open_clip)
  kSum,   ///< CE_image->text + CE_text->image (paper Eq. 2 written as a sum of both)
};

/// "mean" | "sum" (train.contrastive_reduction); throws std::invalid_argument otherwise.
ContrastiveReduction parse_contrastive_reduction(const std::string& name);

/// Symmetric InfoNCE on one device.
/// image_features, text_features: [B, E], L2-normalised; logit_scale: 0-d, already
/// exp'd (the temperature's inverse). logits = logit_scale * image @ text^T; the target of
/// row i is column i in both directions. Returns a 0-d tensor.
torch::Tensor contrastive_loss(const torch::Tensor& image_features,
                               const torch::Tensor& text_features,
                               const torch::Tensor& logit_scale,
                               ContrastiveReduction reduction = ContrastiveReduction::kMean);

/// Distributed form: local rows against gathered (global) columns.
/// image_local, text_local: [B_local, E]; image_global, text_global: [B_global, E] with
/// this rank's rows at [label_offset, label_offset + B_local). Row i of the local image
/// block targets global text column label_offset + i, and vice versa. Each direction is
/// the MEAN over local rows; averaging this over ranks of equal B_local gives the
/// single-process loss.
torch::Tensor contrastive_loss(const torch::Tensor& image_local, const torch::Tensor& text_local,
                               const torch::Tensor& image_global,
                               const torch::Tensor& text_global,
                               const torch::Tensor& logit_scale, int64_t label_offset,
                               ContrastiveReduction reduction = ContrastiveReduction::kMean);

/// Captioning loss result: loss = sum / num_tokens.
struct CaptionLoss {
  torch::Tensor loss;        ///< 0-d: mean CE over real (non-pad) target tokens
  torch::Tensor sum;         ///< 0-d: summed CE over real target tokens
  int64_t num_tokens = 0;    ///< number of real target tokens (for a global token mean)
};

/// Teacher-forced next-token cross-entropy.
/// logits: [B, T-1, V], position j predicting text[:, j + 1]; text: [B, T] token ids.
/// Targets are text[:, 1:]; positions whose target equals pad_id are ignored.
/// label_smoothing in [0, 1) as torch's cross_entropy (spread over all V classes).
/// With no real target token the loss is 0 (and num_tokens 0).
CaptionLoss caption_loss(const torch::Tensor& logits, const torch::Tensor& text, int64_t pad_id,
                         double label_smoothing = 0.0);

/// Weighted parts, as open_clip logs them: total = contrastive + caption where
/// contrastive = lambda_con * L_con and caption = lambda_cap * L_cap.
struct CoCaLossParts {
  torch::Tensor total;
  torch::Tensor contrastive;
  torch::Tensor caption;
  int64_t caption_tokens = 0;
};

/// L = lambda_con * L_con + lambda_cap * L_cap (paper: 1 and 2).
struct CoCaLoss {
  double lambda_con = 1.0;
  double lambda_cap = 2.0;
  ContrastiveReduction reduction = ContrastiveReduction::kMean;
  double label_smoothing = 0.0;
  int64_t pad_id = 0;

  /// From train.lambda_con, lambda_cap, contrastive_reduction, label_smoothing.
  static CoCaLoss from_config(const TrainConfig& cfg, int64_t pad_id);

  /// Shapes as contrastive_loss() and caption_loss(). Single-device form.
  CoCaLossParts operator()(const torch::Tensor& image_features,
                           const torch::Tensor& text_features,
                           const torch::Tensor& logit_scale, const torch::Tensor& logits,
                           const torch::Tensor& text) const;
};

/// Clamps the (log-space) logit-scale parameter to [0, ln max_scale] in place under
/// NoGradGuard (open_clip clamps to ln 100 after every optimizer step).
void clamp_logit_scale_(torch::Tensor& logit_scale, double max_scale = 100.0);

}  // namespace coca::train
