#include "coca/model/classifier_head.h"

#include <torch/torch.h>

#include "coca/model/transformer_block.h"

namespace coca::model {

ClassifierHeadImpl::ClassifierHeadImpl(ClassifierHeadOptions options_) : options(options_) {
  reset();
}

void ClassifierHeadImpl::reset() {
  TORCH_CHECK(options.width > 0 && options.num_classes > 0 && options.heads > 0 &&
                  options.width % options.heads == 0,
              "ClassifierHead: width (", options.width, ") must be a positive multiple of heads (",
              options.heads, ") and num_classes (", options.num_classes, ") positive");
  AttentionPoolOptions pool_options;
  pool_options.width = options.width;
  pool_options.context_width = options.width;
  pool_options.heads = options.heads;
  pool_options.queries = 1;
  pool = register_module("pool", AttentionPool(pool_options));
  ln = register_module("ln", make_layer_norm(options.width));
  head = register_module("head", torch::nn::Linear(options.width, options.num_classes));
  reset_parameters();
}

void ClassifierHeadImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  pool->reset_parameters();
  head->weight.zero_();
  head->bias.zero_();
}

torch::Tensor ClassifierHeadImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(2) == options.width,
              "ClassifierHead: expected tokens [B, N, ", options.width, "], got ", tokens.sizes());
  return head->forward(ln->forward(pool->forward(tokens).squeeze(1)));
}

}  // namespace coca::model
