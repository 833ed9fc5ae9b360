// Classification head of the frozen-feature and finetuning protocols (CoCa arXiv
// 2205.01917 §4.2, "frozen-feature evaluation"): a new attentional pooler with one query
// over the image encoder's output tokens, a LayerNorm and a linear layer to the classes.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

#include "coca/model/attention_pool.h"
#include "coca/model/transformer_block.h"

namespace coca::model {

/// Sizes of a ClassifierHead.
struct ClassifierHeadOptions {
  int64_t width = 0;        ///< token width Dv (the ViT width)
  int64_t heads = 8;        ///< pooler attention heads (width must be divisible by it)
  int64_t num_classes = 0;  ///< C
};

/// logits = head(ln(pool(tokens))). Keys: pool.* (AttentionPool, 1 query), ln.*, head.*.
class ClassifierHeadImpl : public torch::nn::Cloneable<ClassifierHeadImpl> {
 public:
  explicit ClassifierHeadImpl(ClassifierHeadOptions options);
  void reset() override;
  /// Pooler query ~ N(0, 1); head weight zero, bias zero (logits start uniform).
  void reset_parameters();

  /// tokens: [B, N, Dv] -> logits [B, C]
  torch::Tensor forward(const torch::Tensor& tokens);

  ClassifierHeadOptions options;
  AttentionPool pool{nullptr};
  LayerNorm ln{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ClassifierHead);

}  // namespace coca::model
