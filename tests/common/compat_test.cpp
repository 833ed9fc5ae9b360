#include "coca/common/compat.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace coca::compat {
namespace {

TEST(CompatTest, StateKeyFindsAdamStateOfEachParameter) {
  auto a = torch::randn({3, 2}, torch::requires_grad());
  auto b = torch::randn({}, torch::requires_grad());
  torch::optim::Adam adam({a, b}, torch::optim::AdamOptions(0.1));
  EXPECT_TRUE(adam.state().empty());  // state is created lazily by step()
  ((a * a).sum() + b * 3).backward();
  adam.step();
  ASSERT_EQ(adam.state().size(), 2u);
  for (const auto& p : {a, b}) {
    const auto it = adam.state().find(state_key(p));
    ASSERT_NE(it, adam.state().end());
    const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
    EXPECT_EQ(s.step(), 1);
    EXPECT_EQ(s.exp_avg().sizes(), p.sizes());
    // Adam's first moment after one step: (1 - beta1) * grad.
    EXPECT_TRUE(torch::allclose(s.exp_avg(), 0.1 * p.grad()));
  }
  EXPECT_NE(state_key(a), state_key(b));
  // Keyed by TensorImpl: a view is another tensor, set_data keeps the key.
  EXPECT_NE(state_key(a.view({6})), state_key(a));
  const auto key = state_key(a);
  a.set_data(torch::zeros({3, 2}));
  EXPECT_EQ(state_key(a), key);
}

#if !COCA_TORCH_AT_LEAST(2, 0)
TEST(CompatTest, LibTorch113KeysByTheImplPointerText) {
  auto p = torch::zeros({2});
  EXPECT_TRUE((std::is_same_v<OptimizerStateKey, std::string>));
  EXPECT_EQ(state_key(p), c10::guts::to_string(p.unsafeGetTensorImpl()));
}
#endif

}  // namespace
}  // namespace coca::compat

namespace coca::compat {
namespace {

TEST(CompatTest, AutocastGuardRunsMatmulsInBf16OnCpuAndRestores) {
  const auto a = torch::randn({4, 8});
  const auto b = torch::randn({8, 3});
  {
    AutocastGuard guard(/*cuda=*/false, at::kBFloat16, /*enabled=*/true);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), at::kFloat);
  {
    AutocastGuard off(/*cuda=*/false, at::kBFloat16, /*enabled=*/false);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), at::kFloat);
  }
}

}  // namespace
}  // namespace coca::compat
