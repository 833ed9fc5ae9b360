// Global-norm gradient clipping against a hand computation.
#include "coca/optim/grad_clip.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "test_utils.h"

namespace coca::optim {
namespace {

TEST(GradClipTest, ClipsToMaxNormAndReturnsNormBefore) {
  auto a = torch::zeros({2}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  auto c = torch::zeros({3}, torch::requires_grad());  // no grad: ignored
  a.mutable_grad() = torch::tensor({3.0f, 4.0f});
  b.mutable_grad() = torch::tensor({12.0f});
  const auto r = clip_grad_norm({a, b, c}, 6.5);
  EXPECT_DOUBLE_EQ(r.total_norm, 13.0);  // sqrt(9 + 16 + 144)
  EXPECT_TRUE(r.finite);
  EXPECT_TRUE(r.clipped);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_TENSOR_NEAR(a.grad(), torch::tensor({3.0f * coef, 4.0f * coef}), 1e-6);
  EXPECT_TENSOR_NEAR(b.grad(), torch::tensor({12.0f * coef}), 1e-6);
  EXPECT_FALSE(c.grad().defined());
}

TEST(GradClipTest, BelowThresholdOrZeroMaxNormOnlyMeasures) {
  auto a = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({0.6f, 0.8f});
  auto r = clip_grad_norm({a}, 2.0);
  EXPECT_NEAR(r.total_norm, 1.0, 1e-7);
  EXPECT_FALSE(r.clipped);
  a.mutable_grad() = torch::tensor({30.0f, 40.0f});
  r = clip_grad_norm({a}, 0.0);
  EXPECT_DOUBLE_EQ(r.total_norm, 50.0);
  EXPECT_FALSE(r.clipped);
  EXPECT_TENSOR_NEAR(a.grad(), torch::tensor({30.0f, 40.0f}), 0.0);
}

TEST(GradClipTest, ReportsNonFiniteAndLeavesGrads) {
  auto a = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity()});
  auto r = clip_grad_norm({a}, 1.0);
  EXPECT_FALSE(r.finite);
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(a.grad()[0].item<float>(), 1.0f);
  a.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()});
  EXPECT_FALSE(clip_grad_norm({a}, 1.0).finite);
  EXPECT_THROW(clip_grad_norm({a}, -1.0), std::invalid_argument);
}

}  // namespace
}  // namespace coca::optim
