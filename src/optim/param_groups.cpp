// Parameter groups and the optimizer factory.
#include "coca/optim/param_groups.h"

#include <torch/torch.h>

#include <stdexcept>

#include "coca/optim/adafactor.h"
#include "coca/optim/fused_adamw.h"

namespace coca::optim {

namespace {

std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

/// The name of the module owning the parameter (the component before the last).
std::string owner_component(const std::string& name) {
  const auto last = name.rfind('.');
  if (last == std::string::npos) return "";
  const auto prev = name.rfind('.', last - 1);
  return name.substr(prev == std::string::npos ? 0 : prev + 1,
                     last - (prev == std::string::npos ? 0 : prev + 1));
}

torch::optim::AdamWOptions make_adamw_options(const OptimConfig& cfg) {
  torch::optim::AdamWOptions options(cfg.lr);
  options.betas({cfg.beta1, cfg.beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
  return options;
}

}  // namespace

bool is_no_decay_param(const std::string& name, const torch::Tensor& param) {
  if (param.dim() < 2) return true;
  const std::string last = last_component(name);
  if (last == "bias" || last == "logit_scale" || last == "cls_emb" ||
      last == "class_embedding") {
    return true;
  }
  const std::string owner = owner_component(name);
  return owner.rfind("ln_", 0) == 0 || owner.find("norm") != std::string::npos;
}

std::vector<ParamGroupSpec> make_param_group_specs(const torch::nn::Module& module,
                                                   const OptimConfig& cfg) {
  if (cfg.encoder_lr_scale < 0) {
    throw std::invalid_argument("optim.encoder_lr_scale must be >= 0, got " +
                                std::to_string(cfg.encoder_lr_scale));
  }
  if (cfg.logit_scale_lr_scale < 0) {
    throw std::invalid_argument("optim.logit_scale_lr_scale must be >= 0, got " +
                                std::to_string(cfg.logit_scale_lr_scale));
  }
  // A fifth group for the learned temperature, only when its LR differs: Adafactor clips
  // each update to RMS 1, so a scalar moves by at most ~lr per step, and at lr 1e-3 the
  // temperature stays near its initial value for a short run. The paper and open_clip learn
  // it; a larger LR for this one scalar lets it actually be learned.
  const bool own_scale_group = cfg.logit_scale_lr_scale != 1.0;
  std::vector<ParamGroupSpec> specs(5);
  specs[0].name = "decay";
  specs[1].name = "no_decay";
  specs[2].name = "visual.decay";
  specs[3].name = "visual.no_decay";
  specs[4].name = "logit_scale";
  for (int i = 0; i < 4; ++i) {
    specs[i].lr = i < 2 ? cfg.lr : cfg.lr * cfg.encoder_lr_scale;
    specs[i].weight_decay = (i % 2 == 0) ? cfg.weight_decay : 0.0;
  }
  specs[4].lr = cfg.lr * cfg.logit_scale_lr_scale;
  specs[4].weight_decay = 0.0;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto& name = item.key();
    const auto& param = item.value();
    if (!param.requires_grad()) continue;
    const bool encoder = name.rfind("visual.", 0) == 0;
    if (own_scale_group && last_component(name) == "logit_scale" && !encoder) {
      specs[4].param_names.push_back(name);
      specs[4].params.push_back(param);
      continue;
    }
    const bool no_decay = !cfg.decay_norms_and_biases && is_no_decay_param(name, param);
    auto& spec = specs[(encoder ? 2 : 0) + (no_decay ? 1 : 0)];
    spec.param_names.push_back(name);
    spec.params.push_back(param);
  }
  std::vector<ParamGroupSpec> out;
  for (auto& spec : specs) {
    if (!spec.params.empty()) out.push_back(std::move(spec));
  }
  return out;
}

std::vector<torch::optim::OptimizerParamGroup> make_param_groups(
    const std::vector<ParamGroupSpec>& specs, const OptimConfig& cfg) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& spec : specs) {
    std::unique_ptr<torch::optim::OptimizerOptions> options;
    if (cfg.name == "adafactor") {
      auto o = make_adafactor_options(cfg);
      o.lr(spec.lr).weight_decay(spec.weight_decay);
      options = std::make_unique<AdafactorOptions>(o);
    } else if (cfg.name == "adamw") {
      auto o = make_adamw_options(cfg);
      o.lr(spec.lr).weight_decay(spec.weight_decay);
      options = std::make_unique<torch::optim::AdamWOptions>(o);
    } else {
      throw std::invalid_argument("optim.name: unknown optimizer '" + cfg.name +
                                  "' (expected adafactor | adamw)");
    }
    groups.emplace_back(spec.params, std::move(options));
  }
  return groups;
}

std::vector<double> base_lrs(const std::vector<ParamGroupSpec>& specs) {
  std::vector<double> lrs;
  for (const auto& spec : specs) lrs.push_back(spec.lr);
  return lrs;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const OptimConfig& cfg, std::vector<torch::optim::OptimizerParamGroup> groups) {
  auto check_groups = [&](auto* tag) {
    using Options = std::remove_pointer_t<decltype(tag)>;
    for (size_t i = 0; i < groups.size(); ++i) {
      if (groups[i].has_options() &&
          dynamic_cast<const Options*>(&groups[i].options()) == nullptr) {
        throw std::invalid_argument("make_optimizer: parameter group " + std::to_string(i) +
                                    " carries options of another optimizer than optim.name '" +
                                    cfg.name + "'");
      }
    }
  };
  if (cfg.name == "adafactor") {
    check_groups(static_cast<AdafactorOptions*>(nullptr));
    return std::make_unique<Adafactor>(std::move(groups), make_adafactor_options(cfg));
  }
  if (cfg.name == "adamw") {
    check_groups(static_cast<torch::optim::AdamWOptions*>(nullptr));
    return std::make_unique<FusedAdamW>(std::move(groups), make_adamw_options(cfg));
  }
  throw std::invalid_argument("optim.name: unknown optimizer '" + cfg.name +
                              "' (expected adafactor | adamw)");
}

void zero_grad_to_none(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined()) p.mutable_grad().reset();
    }
  }
}

}  // namespace coca::optim
