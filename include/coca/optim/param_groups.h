// Parameter groups for the optimizer: which parameters get weight decay and which get a
// scaled learning rate (image encoder during finetuning), and make_optimizer() that builds
// Adafactor or AdamW over those groups.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "coca/optim/optim_config.h"

namespace coca::optim {

/// One group before it becomes a torch::optim::OptimizerParamGroup.
struct ParamGroupSpec {
  std::string name;  ///< "decay", "no_decay", "visual.decay", "visual.no_decay", "logit_scale"
  std::vector<std::string> param_names;  ///< full dotted names, in module order
  std::vector<torch::Tensor> params;     ///< same order as param_names
  double lr = 0.0;                       ///< base (peak) lr of the group, before the schedule
  double weight_decay = 0.0;             ///< 0 for the no_decay groups
};

/// True for parameters that get no weight decay (unless cfg.decay_norms_and_biases):
/// any parameter with fewer than 2 dims (biases, LayerNorm weights, 1-d embeddings such
/// as cls_emb / class_embedding, the 0-d logit_scale), and by name: a last component
/// "bias", "logit_scale", "cls_emb" or "class_embedding", or a module named ln_* / *norm*.
bool is_no_decay_param(const std::string& name, const torch::Tensor& param);

/// Splits the trainable (requires_grad) parameters of `module` into up to four groups:
/// {rest, image encoder (names starting with "visual.")} x {decay, no_decay}. The encoder
/// groups get lr = cfg.lr * cfg.encoder_lr_scale, the others cfg.lr; no_decay groups get
/// weight_decay 0, decay groups cfg.weight_decay. When cfg.logit_scale_lr_scale != 1, a
/// fifth group "logit_scale" (lr = cfg.lr * logit_scale_lr_scale, no decay) holds the
/// parameter named logit_scale. Empty groups are dropped; the order is decay, no_decay,
/// visual.decay, visual.no_decay, logit_scale.
std::vector<ParamGroupSpec> make_param_group_specs(const torch::nn::Module& module,
                                                   const OptimConfig& cfg);

/// Turns specs into LibTorch groups whose options are of cfg.name's type (AdafactorOptions
/// or AdamWOptions from cfg) with the spec's lr and weight_decay.
std::vector<torch::optim::OptimizerParamGroup> make_param_groups(
    const std::vector<ParamGroupSpec>& specs, const OptimConfig& cfg);

/// Base (peak) lr of each spec, in order: the input of WarmupDecayLR.
std::vector<double> base_lrs(const std::vector<ParamGroupSpec>& specs);

/// Adafactor (cfg.name "adafactor", options from make_adafactor_options) or
/// FusedAdamW ("adamw": torch::optim::AdamW's update in one pass; betas (beta1, beta2),
/// eps = adam_eps) over `groups`.
/// Groups without options get cfg's; groups with options must carry the matching type.
/// Throws std::invalid_argument for another name or mismatching group options.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const OptimConfig& cfg, std::vector<torch::optim::OptimizerParamGroup> groups);

/// Drops every parameter's gradient (PyTorch 2.x's zero_grad(set_to_none=True); LibTorch
/// 1.13's zero_grad() zero-fills them instead): no gradient memory is held through the
/// next forward, and the first backward writes each gradient instead of adding to zeros.
void zero_grad_to_none(torch::optim::Optimizer& optimizer);

}  // namespace coca::optim
