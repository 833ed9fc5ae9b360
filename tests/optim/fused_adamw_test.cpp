// FusedAdamW against LibTorch's AdamW: the same trajectory over several steps (two groups
// with their own lr / weight decay, a parameter without gradient, a large tensor that is
// split across threads), and states that load into each other.
#include "coca/optim/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "coca/common/compat.h"
#include "test_utils.h"

namespace coca::optim {
namespace {

class FusedAdamWTest : public coca::testing::SeededTest {};

std::vector<torch::Tensor> make_params() {
  return {torch::randn({70, 1000}), torch::randn({300}), torch::randn({3, 4, 5}),
          torch::randn({8})};
}

std::vector<torch::optim::OptimizerParamGroup> groups_of(std::vector<torch::Tensor>& ps) {
  auto a = std::make_unique<torch::optim::AdamWOptions>(3e-3);
  a->betas({0.9, 0.98}).eps(1e-6).weight_decay(0.1);
  auto b = std::make_unique<torch::optim::AdamWOptions>(1e-2);
  b->betas({0.8, 0.999}).eps(1e-8).weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(std::vector<torch::Tensor>{ps[0], ps[1]}, std::move(a));
  g.emplace_back(std::vector<torch::Tensor>{ps[2], ps[3]}, std::move(b));
  return g;
}

std::vector<torch::Tensor> leaves(const std::vector<torch::Tensor>& init) {
  std::vector<torch::Tensor> out;
  for (const auto& t : init) out.push_back(t.clone().requires_grad_());
  return out;
}

TEST_F(FusedAdamWTest, FollowsLibTorchAdamW) {
  const auto init = make_params();
  auto ref_p = leaves(init), fused_p = leaves(init);
  torch::optim::AdamW ref(groups_of(ref_p), torch::optim::AdamWOptions(1e-3));
  FusedAdamW fused(groups_of(fused_p), torch::optim::AdamWOptions(1e-3));
  for (int step = 0; step < 6; ++step) {
    for (size_t i = 0; i < init.size(); ++i) {
      if (i == 3 && step % 2 == 1) {  // no gradient on odd steps: untouched, step not counted
        ref_p[i].mutable_grad().reset();
        fused_p[i].mutable_grad().reset();
        continue;
      }
      const auto g = torch::randn_like(init[i]) * (step + 1);
      ref_p[i].mutable_grad() = g.clone();
      fused_p[i].mutable_grad() = g.clone();
    }
    ref.step();
    fused.step();
    for (size_t i = 0; i < init.size(); ++i) {
      const auto diff = (ref_p[i] - fused_p[i]).abs().max().item<double>();
      EXPECT_LT(diff, 2e-6) << "param " << i << " step " << step;
    }
  }
  // The parameters moved (the test would pass trivially otherwise).
  EXPECT_GT((fused_p[0] - init[0]).abs().max().item<double>(), 1e-3);
}

TEST_F(FusedAdamWTest, StateLoadsIntoLibTorchAdamWAndBack) {
  const auto init = make_params();
  auto p1 = leaves(init), p2 = leaves(init);
  FusedAdamW fused(groups_of(p1), torch::optim::AdamWOptions(1e-3));
  for (auto& p : p1) p.mutable_grad() = torch::randn_like(p);
  fused.step();
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(buffer);
  }
  torch::optim::AdamW ref(groups_of(p2), torch::optim::AdamWOptions(1e-3));
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  ref.load(in);
  for (size_t i = 0; i < p1.size(); ++i) {
    const auto& a = static_cast<torch::optim::AdamWParamState&>(
        *fused.state().at(compat::state_key(p1[i])));
    const auto& b = static_cast<torch::optim::AdamWParamState&>(*ref.state().at(compat::state_key(p2[i])));
    EXPECT_EQ(a.step(), b.step());
    EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
    EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
  }
}

}  // namespace
}  // namespace coca::optim
