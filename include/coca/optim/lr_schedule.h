// Learning-rate schedules: linear warm-up, then linear (CoCa, arXiv 2205.01917 §4.1: 2%
// warm-up to the peak, then linear decay), cosine or constant; and WarmupDecayLR, a
// torch::optim::LRScheduler that applies the factor to every group's base (peak) lr.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/optim/schedulers/lr_scheduler.h>

#include <cstdint>
#include <vector>

#include "coca/optim/optim_config.h"

namespace coca::optim {

/// Warm-up length in steps: cfg.warmup_steps when > 0, else round(warmup_fraction * total).
int64_t warmup_steps(int64_t total, const ScheduleConfig& cfg);

/// LR multiplier for the optimizer step with 0-based index `step` of `total` steps.
/// With x = min(step, total - 1) + 1 (steps done after this one), W = warm-up steps,
/// f = final_lr_fraction:
///   x <= W:  x / W                                  (linear from 0; 1 at step W - 1)
///   x >  W:  p = (x - W) / (total - W) in (0, 1],
///            linear: 1 - (1 - f) p;  cosine: f + (1 - f)(1 + cos(pi p)) / 2;  constant: 1
/// so the last step (step = total - 1) runs at f. Throws std::invalid_argument for
/// total < 1, step < 0 or an unknown cfg.name.
double lr_factor(int64_t step, int64_t total, const ScheduleConfig& cfg);

/// Sets every param group's lr to base_lrs[g] * lr_factor(step, total, cfg).
/// On construction the optimizer gets the lr of step 0; call step() AFTER each
/// optimizer.step() to move to the next step's lr, and set_step(s) when resuming
/// (s = optimizer steps already done). Works with any optimizer whose options
/// implement get_lr/set_lr (Adafactor, AdamW, ...). Example:
///   WarmupDecayLR sched(opt, groups_base_lrs, cfg.train.steps, cfg.schedule);
///   for (...) { loss.backward(); opt.step(); sched.step(); }
class WarmupDecayLR : public torch::optim::LRScheduler {
 public:
  /// base_lrs: one peak lr per param group; empty = the groups' current lrs.
  WarmupDecayLR(torch::optim::Optimizer& optimizer, std::vector<double> base_lrs,
                int64_t total_steps, ScheduleConfig cfg);

  /// Jumps to step `step` (optimizer steps already taken) and sets its lrs.
  void set_step(int64_t step);
  /// 0-based index of the optimizer step the current lrs are for.
  int64_t current_step() const { return static_cast<int64_t>(step_count_); }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

 protected:
  /// The lrs of the step after the current one (LRScheduler::step then advances).
  std::vector<double> get_lrs() override;

 private:
  std::vector<double> lrs_at(int64_t step) const;

  torch::optim::Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t total_steps_;
  ScheduleConfig cfg_;
};

}  // namespace coca::optim
