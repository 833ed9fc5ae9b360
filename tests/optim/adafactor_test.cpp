// Adafactor: golden trajectory from an independent float64 reference
// (tools/make_golden_optim.py), factored state sizes, save/load, option checks, convergence.
#include "coca/optim/adafactor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <sstream>
#include <string>

#include "coca/common/compat.h"
#include "golden_json.h"
#include "test_utils.h"

namespace coca::optim {
namespace {

using coca::testing::golden_tensor;
using coca::testing::load_golden_json;

const AdafactorParamState& state_of(const torch::optim::Optimizer& opt, const torch::Tensor& p) {
  return static_cast<const AdafactorParamState&>(
      *opt.state().at(compat::state_key(p)));
}

AdafactorOptions options_from_golden(const nlohmann::json& o) {
  AdafactorOptions options(o.at("lr").get<double>());
  options.beta1(o.at("beta1").get<double>())
      .beta2(o.at("beta2").get<double>())
      .beta2_schedule(o.at("beta2_schedule").get<std::string>())
      .decay_rate(o.at("decay_rate").get<double>())
      .eps1(o.at("eps1").get<double>())
      .eps2(o.at("eps2").get<double>())
      .clip_threshold(o.at("clip_threshold").get<double>())
      .weight_decay(o.at("weight_decay").get<double>())
      .min_dim_size_to_factor(o.at("min_dim").get<int64_t>())
      .relative_step(o.at("relative_step").get<bool>());
  return options;
}

TEST(AdafactorTest, ProducesReferenceValues) {
  const auto golden = load_golden_json("adafactor.json");
  const std::vector<std::string> names = {"matrix", "vector", "tensor3", "scalar"};
  const auto steps = golden.at("steps").get<int64_t>();
  ASSERT_EQ(static_cast<int64_t>(golden.at("grads").size()), steps);
  int cases = 0;
  for (const auto& [case_name, c] : golden.at("cases").items()) {
    SCOPED_TRACE(case_name);
    std::map<std::string, torch::Tensor> params;
    std::vector<torch::Tensor> list;
    for (const auto& n : names) {
      params[n] = golden_tensor(golden.at("params").at(n)).set_requires_grad(true);
      list.push_back(params[n]);
    }
    const auto options = options_from_golden(c.at("options"));
    Adafactor opt(list, options);
    for (int64_t s = 0; s < steps; ++s) {
      for (const auto& n : names) {
        params[n].mutable_grad() = golden_tensor(golden.at("grads")[s].at(n));
      }
      opt.step();
      for (const auto& n : names) {
        SCOPED_TRACE("step " + std::to_string(s + 1) + " " + n);
        EXPECT_TENSOR_NEAR(params[n], golden_tensor(c.at("expected")[s].at(n)), 1e-12, 1e-9);
      }
    }
    // The cases cover both second-moment layouts (paths the golden file was made for).
    const int64_t min_dim = options.min_dim_size_to_factor();
    EXPECT_EQ(state_of(opt, params["matrix"]).exp_avg_sq_row().defined(),
              Adafactor::factored({6, 5}, min_dim));
    ++cases;
  }
  EXPECT_EQ(cases, 2);
}

TEST(AdafactorTest, FloatParamsTrackDoubleReference) {
  // fp32 parameters follow the same trajectory within float tolerance.
  const auto golden = load_golden_json("adafactor.json");
  const auto& c = golden.at("cases").at("momentum_constant_beta2");
  auto p = golden_tensor(golden.at("params").at("matrix")).to(torch::kFloat).requires_grad_();
  Adafactor opt(std::vector<torch::Tensor>{p}, options_from_golden(c.at("options")));
  for (size_t s = 0; s < golden.at("grads").size(); ++s) {
    p.mutable_grad() = golden_tensor(golden.at("grads")[s].at("matrix")).to(torch::kFloat);
    opt.step();
  }
  EXPECT_TENSOR_NEAR(p, golden_tensor(c.at("expected").back().at("matrix")), 1e-5, 1e-5);
}

TEST(AdafactorTest, FactorsMatrixState) {
  auto matrix = torch::randn({40, 30}, torch::requires_grad());
  auto small = torch::randn({40, 3}, torch::requires_grad());  // 3 < threshold: full
  auto vec = torch::randn({40}, torch::requires_grad());
  auto t3 = torch::randn({2, 16, 20}, torch::requires_grad());
  std::vector<torch::Tensor> params = {matrix, small, vec, t3};
  Adafactor opt(params, AdafactorOptions(1e-2).beta1(0.0).min_dim_size_to_factor(16));
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
  opt.step();

  const auto& ms = state_of(opt, matrix);
  ASSERT_TRUE(ms.exp_avg_sq_row().defined());
  EXPECT_EQ(ms.exp_avg_sq_row().sizes(), torch::IntArrayRef({40}));
  EXPECT_EQ(ms.exp_avg_sq_col().sizes(), torch::IntArrayRef({30}));
  EXPECT_EQ(ms.exp_avg_sq_row().numel() + ms.exp_avg_sq_col().numel(), 40 + 30);
  EXPECT_FALSE(ms.exp_avg_sq().defined());
  EXPECT_FALSE(ms.exp_avg().defined());
  EXPECT_EQ(ms.step(), 1);

  const auto& ss = state_of(opt, small);
  EXPECT_FALSE(ss.exp_avg_sq_row().defined());
  EXPECT_EQ(ss.exp_avg_sq().sizes(), small.sizes());

  EXPECT_EQ(state_of(opt, vec).exp_avg_sq().sizes(), vec.sizes());

  const auto& ts = state_of(opt, t3);  // factored over the last two dims, per leading index
  EXPECT_EQ(ts.exp_avg_sq_row().sizes(), torch::IntArrayRef({2, 16}));
  EXPECT_EQ(ts.exp_avg_sq_col().sizes(), torch::IntArrayRef({2, 20}));
}

TEST(AdafactorTest, FirstStepFactoredMomentsAreRowAndColumnMeans) {
  // beta2_1 = 0, so after one step R = mean over cols of G^2 + eps1 and C = mean over rows.
  auto p = torch::randn({5, 4}, torch::dtype(torch::kDouble).requires_grad(true));
  Adafactor opt(std::vector<torch::Tensor>{p}, AdafactorOptions(0.1).min_dim_size_to_factor(2));
  auto g = torch::randn({5, 4}, torch::kDouble);
  p.mutable_grad() = g.clone();
  opt.step();
  const auto& s = state_of(opt, p);
  auto g2 = (g * g + 1e-30);
  EXPECT_TENSOR_NEAR(s.exp_avg_sq_row(), g2.mean(1), 1e-15, 1e-12);
  EXPECT_TENSOR_NEAR(s.exp_avg_sq_col(), g2.mean(0), 1e-15, 1e-12);
}

TEST(AdafactorTest, NoMomentumKeepsNoExpAvg) {
  auto p = torch::randn({8}, torch::requires_grad());
  Adafactor opt(std::vector<torch::Tensor>{p}, AdafactorOptions(1e-2).beta1(0.0));
  p.mutable_grad() = torch::randn_like(p);
  opt.step();
  EXPECT_FALSE(state_of(opt, p).exp_avg().defined());

  auto q = torch::randn({8}, torch::requires_grad());
  Adafactor with_momentum(std::vector<torch::Tensor>{q}, AdafactorOptions(1e-2).beta1(0.9));
  q.mutable_grad() = torch::randn_like(q);
  with_momentum.step();
  ASSERT_TRUE(state_of(with_momentum, q).exp_avg().defined());
  EXPECT_EQ(state_of(with_momentum, q).exp_avg().sizes(), q.sizes());
}

TEST(AdafactorTest, SkipsParamsWithoutGrad) {
  auto p = torch::randn({3, 3}, torch::requires_grad());
  auto before = p.detach().clone();
  Adafactor opt(std::vector<torch::Tensor>{p}, AdafactorOptions(0.1));
  opt.step();
  EXPECT_TRUE(torch::equal(p.detach(), before));
  EXPECT_TRUE(opt.state().empty());
}

TEST(AdafactorTest, SaveLoadThenStepIsBitwiseEqual) {
  coca::testing::TempDir dir;
  auto make_params = [] {
    torch::manual_seed(7);
    return std::vector<torch::Tensor>{torch::randn({6, 5}, torch::requires_grad()),
                                      torch::randn({7}, torch::requires_grad()),
                                      torch::randn({}, torch::requires_grad())};
  };
  const auto options = AdafactorOptions(0.01).beta1(0.9).weight_decay(0.1).min_dim_size_to_factor(2);
  auto a = make_params();
  Adafactor opt_a(a, options);
  torch::manual_seed(11);
  for (int s = 0; s < 3; ++s) {
    for (auto& p : a) p.mutable_grad() = torch::randn_like(p);
    opt_a.step();
  }
  const auto file = (dir / "adafactor.pt").string();
  torch::save(opt_a, file);

  // A second optimizer over copies of the same parameter values, restored from the file.
  std::vector<torch::Tensor> b;
  for (auto& p : a) b.push_back(p.detach().clone().requires_grad_());
  Adafactor opt_b(b, AdafactorOptions(0.5));  // different options: load must restore them
  torch::load(opt_b, file);
  EXPECT_TRUE(static_cast<const AdafactorOptions&>(opt_b.param_groups()[0].options()) ==
              static_cast<const AdafactorOptions&>(opt_a.param_groups()[0].options()));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(state_of(opt_a, a[i]) == state_of(opt_b, b[i])) << "param " << i;
  }
  for (int s = 0; s < 2; ++s) {
    for (size_t i = 0; i < a.size(); ++i) {
      auto g = torch::randn_like(a[i]);
      a[i].mutable_grad() = g;
      b[i].mutable_grad() = g.clone();
    }
    opt_a.step();
    opt_b.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TENSOR_NEAR(b[i], a[i], 0.0, 0.0);
  }
  EXPECT_FALSE(state_of(opt_b, b[1]).exp_avg_sq_row().defined());  // undefined stays undefined
}

TEST(AdafactorTest, BadOptionNamesItself) {
  auto p = torch::randn({2}, torch::requires_grad());
  auto expect_message = [&](const AdafactorOptions& o, const std::string& what) {
    try {
      Adafactor opt(std::vector<torch::Tensor>{p}, o);
      ADD_FAILURE() << "no error for " << what;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_message(AdafactorOptions(-1.0), "Invalid learning rate: -1");
  expect_message(AdafactorOptions().beta1(1.0), "Invalid beta1: 1");
  expect_message(AdafactorOptions().beta2(-0.5), "Invalid beta2: -0.5");
  expect_message(AdafactorOptions().beta2_schedule("linear"), "Invalid beta2_schedule: 'linear'");
  expect_message(AdafactorOptions().decay_rate(0.8), "Invalid decay_rate: 0.8");
  expect_message(AdafactorOptions().eps1(-1e-30), "Invalid eps1");
  expect_message(AdafactorOptions().eps2(-1.0), "Invalid eps2: -1");
  expect_message(AdafactorOptions().clip_threshold(-2.0), "Invalid clip_threshold: -2");
  expect_message(AdafactorOptions().weight_decay(-0.1), "Invalid weight_decay: -0.1");
  expect_message(AdafactorOptions().min_dim_size_to_factor(-1), "Invalid min_dim_size_to_factor: -1");
}

TEST(AdafactorTest, MakeOptionsFromConfig) {
  OptimConfig cfg;
  cfg.lr = 3e-4;
  cfg.beta1 = 0.0;
  cfg.beta2_schedule = "pow";
  cfg.clip_threshold = 0.0;
  cfg.min_dim_size_to_factor = 32;
  cfg.relative_step = true;
  const auto o = make_adafactor_options(cfg);
  EXPECT_DOUBLE_EQ(o.lr(), 3e-4);
  EXPECT_DOUBLE_EQ(o.beta1(), 0.0);
  EXPECT_EQ(o.beta2_schedule(), "pow");
  EXPECT_DOUBLE_EQ(o.weight_decay(), cfg.weight_decay);
  EXPECT_EQ(o.min_dim_size_to_factor(), 32);
  EXPECT_TRUE(o.relative_step());
  cfg.clip_threshold = -1.0;
  EXPECT_THROW(make_adafactor_options(cfg), c10::Error);
}

TEST(AdafactorTest, ConvergesOnXor) {
  torch::manual_seed(0);
  auto inputs = torch::tensor({0., 0., 0., 1., 1., 0., 1., 1.}).reshape({4, 2});
  auto targets = torch::tensor({0., 1., 1., 0.}).reshape({4, 1});
  torch::nn::Sequential net(torch::nn::Linear(2, 16), torch::nn::Tanh(),
                            torch::nn::Linear(16, 1));
  Adafactor opt(net->parameters(),
                AdafactorOptions(0.05).beta1(0.9).min_dim_size_to_factor(2));
  double first = 0, last = 0;
  for (int s = 0; s < 400; ++s) {
    opt.zero_grad();
    auto loss = torch::binary_cross_entropy_with_logits(net->forward(inputs), targets);
    loss.backward();
    opt.step();
    if (s == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.05) << "first loss " << first;
  auto predictions = (net->forward(inputs) > 0).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(predictions, targets));
}

TEST(AdafactorTest, StepRunsClosure) {
  auto p = torch::ones({2}, torch::requires_grad());
  Adafactor opt(std::vector<torch::Tensor>{p}, AdafactorOptions(0.1).clip_threshold(0.0));
  auto loss = opt.step([&] {
    opt.zero_grad();
    auto l = (p * p).sum();
    l.backward();
    return l;
  });
  EXPECT_DOUBLE_EQ(loss.item<double>(), 2.0);
  // First step, no momentum, no clipping: U = G / |G| = 1, so p = 1 - lr.
  EXPECT_TENSOR_NEAR(p, torch::full({2}, 0.9), 1e-6);
}

}  // namespace
}  // namespace coca::optim

namespace coca::optim {
namespace {

// The one-pass fp32 update of factored parameters (factored_update_fp32) against the
// element-wise path, which float64 parameters take: same trajectory to float precision,
// with and without momentum, clipping active, weight decay, 2-D and 3-D parameters.
void expect_fused_matches_float64(double beta1) {
  torch::manual_seed(7);
  const std::vector<torch::Tensor> init = {torch::randn({64, 48}), torch::randn({3, 16, 12}),
                                           torch::randn({40})};
  auto make = [&](torch::Dtype dtype, std::vector<torch::Tensor>& ps) {
    for (const auto& t : init) ps.push_back(t.to(dtype).clone().requires_grad_());
    AdafactorOptions o(0.05);
    o.beta1(beta1).weight_decay(0.1).min_dim_size_to_factor(8).clip_threshold(1.0);
    return Adafactor(ps, o);
  };
  std::vector<torch::Tensor> p32, p64;
  auto fused = make(torch::kFloat, p32);
  auto reference = make(torch::kDouble, p64);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < init.size(); ++i) {
      // Uneven magnitudes across rows and columns, so the factors and clipping matter.
      auto g = torch::randn_like(init[i]) * (1 + step);
      if (g.dim() >= 2) g = g * torch::linspace(0.1, 3.0, g.size(-1));
      p32[i].mutable_grad() = g.clone();
      p64[i].mutable_grad() = g.to(torch::kDouble);
    }
    fused.step();
    reference.step();
    for (size_t i = 0; i < init.size(); ++i) {
      const auto diff = (p32[i].to(torch::kDouble) - p64[i]).abs().max().item<double>();
      EXPECT_LT(diff, 2e-6) << "param " << i << " step " << step << " beta1 " << beta1;
    }
  }
  EXPECT_GT((p32[0] - init[0]).abs().max().item<double>(), 0.05);  // it moved
}

TEST(AdafactorFusedTest, FactoredFloat32MatchesTheElementwisePathWithMomentum) {
  expect_fused_matches_float64(0.9);
}

TEST(AdafactorFusedTest, FactoredFloat32MatchesTheElementwisePathWithoutMomentum) {
  expect_fused_matches_float64(0.0);
}

}  // namespace
}  // namespace coca::optim
