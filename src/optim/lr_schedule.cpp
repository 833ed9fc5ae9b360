// Learning-rate schedules (see lr_schedule.h for the formulas).
#include "coca/optim/lr_schedule.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace coca::optim {

int64_t warmup_steps(int64_t total, const ScheduleConfig& cfg) {
  if (cfg.warmup_steps > 0) return cfg.warmup_steps;
  return std::max<int64_t>(0, std::llround(cfg.warmup_fraction * static_cast<double>(total)));
}

double lr_factor(int64_t step, int64_t total, const ScheduleConfig& cfg) {
  if (total < 1) {
    throw std::invalid_argument("lr_factor: total steps must be >= 1, got " +
                                std::to_string(total));
  }
  if (step < 0) {
    throw std::invalid_argument("lr_factor: step must be >= 0, got " + std::to_string(step));
  }
  if (cfg.name != "linear" && cfg.name != "cosine" && cfg.name != "constant") {
    throw std::invalid_argument("lr_factor: unknown schedule.name '" + cfg.name +
                                "' (expected linear | cosine | constant)");
  }
  const int64_t w = warmup_steps(total, cfg);
  const int64_t x = std::min(step, total - 1) + 1;
  if (x <= w) return static_cast<double>(x) / static_cast<double>(w);
  if (cfg.name == "constant") return 1.0;
  const double p = static_cast<double>(x - w) / static_cast<double>(total - w);
  const double f = cfg.final_lr_fraction;
  if (cfg.name == "linear") return 1.0 - (1.0 - f) * p;
  return f + (1.0 - f) * 0.5 * (1.0 + std::cos(M_PI * p));
}

WarmupDecayLR::WarmupDecayLR(torch::optim::Optimizer& optimizer, std::vector<double> base_lrs,
                             int64_t total_steps, ScheduleConfig cfg)
    : torch::optim::LRScheduler(optimizer),
      optimizer_(optimizer),
      base_lrs_(std::move(base_lrs)),
      total_steps_(total_steps),
      cfg_(std::move(cfg)) {
  const auto& groups = optimizer_.param_groups();
  if (base_lrs_.empty()) {
    for (const auto& g : groups) base_lrs_.push_back(g.options().get_lr());
  }
  if (base_lrs_.size() != groups.size()) {
    throw std::invalid_argument("WarmupDecayLR: " + std::to_string(base_lrs_.size()) +
                                " base lrs for " + std::to_string(groups.size()) +
                                " parameter groups");
  }
  lr_factor(0, total_steps_, cfg_);  // validates total and name before the first step
  set_step(0);
}

void WarmupDecayLR::set_step(int64_t step) {
  if (step < 0) {
    throw std::invalid_argument("WarmupDecayLR: step must be >= 0, got " +
                                std::to_string(step));
  }
  step_count_ = static_cast<decltype(step_count_)>(step);
  const auto lrs = lrs_at(step);
  auto& groups = optimizer_.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(lrs[g]);
}

std::vector<double> WarmupDecayLR::get_lrs() {
  return lrs_at(static_cast<int64_t>(step_count_) + 1);
}

std::vector<double> WarmupDecayLR::lrs_at(int64_t step) const {
  const double factor = lr_factor(step, total_steps_, cfg_);
  std::vector<double> lrs;
  lrs.reserve(base_lrs_.size());
  for (double base : base_lrs_) lrs.push_back(base * factor);
  return lrs;
}

}  // namespace coca::optim
