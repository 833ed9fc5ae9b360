// LR schedule: hand-computed factors at the boundaries, and the scheduler object.
#include "coca/optim/lr_schedule.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "coca/optim/adafactor.h"

namespace coca::optim {
namespace {

ScheduleConfig schedule(const std::string& name, double warmup_fraction, int64_t warmup_steps,
                        double final_fraction) {
  ScheduleConfig cfg;
  cfg.name = name;
  cfg.warmup_fraction = warmup_fraction;
  cfg.warmup_steps = warmup_steps;
  cfg.final_lr_fraction = final_fraction;
  return cfg;
}

TEST(LrScheduleTest, PaperLinearWarmupThenDecayToZero) {
  // 100 steps, 2% warm-up = 2 steps.
  const auto cfg = schedule("linear", 0.02, 0, 0.0);
  EXPECT_EQ(warmup_steps(100, cfg), 2);
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, cfg), 0.5);          // first warm-up step: 1/2
  EXPECT_DOUBLE_EQ(lr_factor(1, 100, cfg), 1.0);          // end of warm-up: peak
  EXPECT_DOUBLE_EQ(lr_factor(2, 100, cfg), 1.0 - 1.0 / 98.0);
  EXPECT_DOUBLE_EQ(lr_factor(50, 100, cfg), 0.5);         // (51 - 2) / 98 of the decay done
  EXPECT_DOUBLE_EQ(lr_factor(99, 100, cfg), 0.0);         // last step
  EXPECT_DOUBLE_EQ(lr_factor(150, 100, cfg), 0.0);        // past the end stays at the end
}

TEST(LrScheduleTest, WarmupStepsWinOverFraction) {
  const auto cfg = schedule("linear", 0.5, 10, 0.1);
  EXPECT_EQ(warmup_steps(1000, cfg), 10);
  EXPECT_DOUBLE_EQ(lr_factor(4, 1000, cfg), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(9, 1000, cfg), 1.0);
  // step 504: x = 505, p = 495 / 990 = 0.5 -> 1 - 0.9 * 0.5
  EXPECT_DOUBLE_EQ(lr_factor(504, 1000, cfg), 0.55);
  EXPECT_DOUBLE_EQ(lr_factor(999, 1000, cfg), 0.1);
  EXPECT_EQ(warmup_steps(75, schedule("linear", 0.02, 0, 0)), 2);  // round(1.5) = 2
}

TEST(LrScheduleTest, CosineAndConstant) {
  const auto cos_cfg = schedule("cosine", 0.0, 0, 0.1);
  EXPECT_DOUBLE_EQ(lr_factor(0, 9, cos_cfg), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 9)));
  // x = 3 of 12 -> p = 0.25
  EXPECT_NEAR(lr_factor(2, 12, cos_cfg), 0.1 + 0.9 * 0.5 * (1 + std::sqrt(0.5)), 1e-15);
  EXPECT_NEAR(lr_factor(5, 12, cos_cfg), 0.55, 1e-15);  // p = 0.5
  EXPECT_NEAR(lr_factor(11, 12, cos_cfg), 0.1, 1e-15);
  const auto constant = schedule("constant", 0.0, 4, 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, constant), 0.25);
  EXPECT_DOUBLE_EQ(lr_factor(3, 100, constant), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(99, 100, constant), 1.0);
}

TEST(LrScheduleTest, RejectsBadArguments) {
  EXPECT_THROW(lr_factor(0, 0, ScheduleConfig{}), std::invalid_argument);
  EXPECT_THROW(lr_factor(-1, 10, ScheduleConfig{}), std::invalid_argument);
  EXPECT_THROW(lr_factor(0, 10, schedule("step", 0, 0, 0)), std::invalid_argument);
}

TEST(LrScheduleTest, SchedulerScalesEveryGroupsBaseLr) {
  auto a = torch::randn({2, 2}, torch::requires_grad());
  auto b = torch::randn({2}, torch::requires_grad());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{a},
                      std::make_unique<AdafactorOptions>(AdafactorOptions(999.0)));
  groups.emplace_back(std::vector<torch::Tensor>{b},
                      std::make_unique<AdafactorOptions>(AdafactorOptions(999.0)));
  Adafactor opt(std::move(groups));
  const auto cfg = schedule("linear", 0.0, 4, 0.0);
  WarmupDecayLR sched(opt, {1e-3, 2e-4}, 20, cfg);
  auto lr = [&](size_t g) { return opt.param_groups()[g].options().get_lr(); };
  EXPECT_DOUBLE_EQ(lr(0), 1e-3 * 0.25);  // step 0 set on construction
  EXPECT_DOUBLE_EQ(lr(1), 2e-4 * 0.25);
  for (int s = 1; s <= 3; ++s) sched.step();
  EXPECT_EQ(sched.current_step(), 3);
  EXPECT_DOUBLE_EQ(lr(0), 1e-3);  // end of warm-up
  EXPECT_DOUBLE_EQ(lr(1), 2e-4);
  sched.set_step(12);  // resume: x = 13, p = 9/16
  EXPECT_DOUBLE_EQ(lr(0), 1e-3 * (1.0 - 9.0 / 16.0));
  sched.step();
  EXPECT_DOUBLE_EQ(lr(1), 2e-4 * (1.0 - 10.0 / 16.0));
  EXPECT_THROW(WarmupDecayLR(opt, {1e-3}, 20, cfg), std::invalid_argument);
}

TEST(LrScheduleTest, SchedulerDrivesAdamW) {
  auto a = torch::randn({3}, torch::requires_grad());
  torch::optim::AdamW opt(std::vector<torch::Tensor>{a}, torch::optim::AdamWOptions(0.01));
  WarmupDecayLR sched(opt, {}, 10, schedule("linear", 0.0, 0, 0.0));  // base = current lr
  EXPECT_DOUBLE_EQ(sched.base_lrs()[0], 0.01);
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].options().get_lr(), 0.01 * 0.9);  // x = 1 of 10
}

}  // namespace
}  // namespace coca::optim
