// Parameter groups (weight-decay exclusions, encoder lr scale) and make_optimizer.
#include "coca/optim/param_groups.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "coca/optim/adafactor.h"
#include "coca/optim/lr_schedule.h"

namespace coca::optim {
namespace {

/// An open_clip-like named tree: logit_scale, visual.{conv1, class_embedding, ln_pre, proj},
/// text.{token_embedding, positional_embedding, cls_emb, ln_final, text_projection}, and
/// a frozen parameter.
std::shared_ptr<torch::nn::Module> tiny_tree() {
  auto root = std::make_shared<torch::nn::Module>();
  root->register_parameter("logit_scale", torch::zeros({}));
  auto visual = std::make_shared<torch::nn::Module>();
  visual->register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 2).bias(false)));
  visual->register_parameter("class_embedding", torch::zeros({4}));
  visual->register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
  visual->register_parameter("proj", torch::zeros({4, 4}));
  root->register_module("visual", visual);
  auto text = std::make_shared<torch::nn::Module>();
  text->register_module("token_embedding", torch::nn::Embedding(10, 4));
  text->register_parameter("positional_embedding", torch::zeros({5, 4}));
  text->register_parameter("cls_emb", torch::zeros({4}));
  text->register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
  text->register_parameter("text_projection", torch::zeros({4, 4}));
  text->register_parameter("frozen", torch::zeros({4, 4}), /*requires_grad=*/false);
  root->register_module("text", text);
  return root;
}

std::set<std::string> names_of(const ParamGroupSpec& spec) {
  return {spec.param_names.begin(), spec.param_names.end()};
}

TEST(ParamGroupsTest, SplitsDecayAndEncoderGroups) {
  auto tree = tiny_tree();
  OptimConfig cfg;
  cfg.lr = 1e-3;
  cfg.weight_decay = 0.05;
  cfg.encoder_lr_scale = 0.1;
  const auto specs = make_param_group_specs(*tree, cfg);
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].name, "decay");
  EXPECT_EQ(names_of(specs[0]), (std::set<std::string>{"text.token_embedding.weight",
                                                       "text.positional_embedding",
                                                       "text.text_projection"}));
  EXPECT_EQ(specs[1].name, "no_decay");
  EXPECT_EQ(names_of(specs[1]), (std::set<std::string>{"logit_scale", "text.cls_emb",
                                                       "text.ln_final.weight",
                                                       "text.ln_final.bias"}));
  EXPECT_EQ(specs[2].name, "visual.decay");
  EXPECT_EQ(names_of(specs[2]), (std::set<std::string>{"visual.conv1.weight", "visual.proj"}));
  EXPECT_EQ(specs[3].name, "visual.no_decay");
  EXPECT_EQ(names_of(specs[3]), (std::set<std::string>{"visual.class_embedding",
                                                       "visual.ln_pre.weight",
                                                       "visual.ln_pre.bias"}));
  EXPECT_DOUBLE_EQ(specs[0].lr, 1e-3);
  EXPECT_DOUBLE_EQ(specs[1].lr, 1e-3);
  EXPECT_DOUBLE_EQ(specs[2].lr, 1e-4);
  EXPECT_DOUBLE_EQ(specs[3].lr, 1e-4);
  EXPECT_DOUBLE_EQ(specs[0].weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(specs[1].weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(specs[2].weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(specs[3].weight_decay, 0.0);
  size_t total = 0;
  for (const auto& s : specs) {
    ASSERT_EQ(s.params.size(), s.param_names.size());
    total += s.params.size();
  }
  EXPECT_EQ(total, 12u);  // 13 parameters, one frozen
}

TEST(ParamGroupsTest, LogitScaleGetsItsOwnGroupOnlyWithAnLrScale) {
  auto tree = tiny_tree();
  OptimConfig cfg;
  cfg.lr = 2e-3;
  cfg.logit_scale_lr_scale = 30.0;
  const auto specs = make_param_group_specs(*tree, cfg);
  ASSERT_EQ(specs.size(), 5u);
  EXPECT_EQ(specs[4].name, "logit_scale");
  EXPECT_EQ(names_of(specs[4]), (std::set<std::string>{"logit_scale"}));
  EXPECT_DOUBLE_EQ(specs[4].lr, 2e-3 * 30.0);
  EXPECT_DOUBLE_EQ(specs[4].weight_decay, 0.0);
  EXPECT_EQ(names_of(specs[1]).count("logit_scale"), 0u);
  EXPECT_DOUBLE_EQ(specs[1].lr, 2e-3);

  cfg.logit_scale_lr_scale = 1.0;  // default: no extra group, logit_scale in no_decay
  const auto plain = make_param_group_specs(*tree, cfg);
  ASSERT_EQ(plain.size(), 4u);
  EXPECT_EQ(names_of(plain[1]).count("logit_scale"), 1u);

  cfg.logit_scale_lr_scale = -1.0;
  EXPECT_THROW(make_param_group_specs(*tree, cfg), std::invalid_argument);
}

TEST(ParamGroupsTest, DecayNormsAndBiasesMergesGroups) {
  auto tree = tiny_tree();
  OptimConfig cfg;
  cfg.decay_norms_and_biases = true;
  const auto specs = make_param_group_specs(*tree, cfg);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "decay");
  EXPECT_EQ(specs[1].name, "visual.decay");
  EXPECT_EQ(specs[0].params.size() + specs[1].params.size(), 12u);
}

TEST(ParamGroupsTest, NoDecayRuleByName) {
  EXPECT_TRUE(is_no_decay_param("a.b.bias", torch::zeros({3, 3})));
  EXPECT_TRUE(is_no_decay_param("blocks.0.ln_1.weight", torch::zeros({3, 3})));
  EXPECT_TRUE(is_no_decay_param("blocks.0.norm1.weight", torch::zeros({3, 3})));
  EXPECT_TRUE(is_no_decay_param("logit_scale", torch::zeros({1, 1})));
  EXPECT_TRUE(is_no_decay_param("x.weight", torch::zeros({3})));
  EXPECT_FALSE(is_no_decay_param("attn_pool.query", torch::zeros({9, 4})));
  EXPECT_FALSE(is_no_decay_param("mlp.c_fc.weight", torch::zeros({8, 4})));
}

TEST(ParamGroupsTest, MakeOptimizerCarriesPerGroupOptions) {
  auto tree = tiny_tree();
  for (const std::string name : {"adafactor", "adamw"}) {
    SCOPED_TRACE(name);
    OptimConfig cfg;
    cfg.name = name;
    cfg.lr = 2e-3;
    cfg.weight_decay = 0.01;
    cfg.encoder_lr_scale = 0.5;
    const auto specs = make_param_group_specs(*tree, cfg);
    auto opt = make_optimizer(cfg, make_param_groups(specs, cfg));
    ASSERT_EQ(opt->param_groups().size(), specs.size());
    for (size_t g = 0; g < specs.size(); ++g) {
      const auto& options = opt->param_groups()[g].options();
      EXPECT_DOUBLE_EQ(options.get_lr(), specs[g].lr);
      const double wd =
          name == "adafactor"
              ? static_cast<const AdafactorOptions&>(options).weight_decay()
              : static_cast<const torch::optim::AdamWOptions&>(options).weight_decay();
      EXPECT_DOUBLE_EQ(wd, specs[g].weight_decay);
    }
    // The schedule scales each group's own base lr (halved for the encoder).
    ScheduleConfig sched_cfg;
    sched_cfg.warmup_steps = 4;
    WarmupDecayLR sched(*opt, base_lrs(specs), 10, sched_cfg);
    EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 2e-3 * 0.25);
    EXPECT_DOUBLE_EQ(opt->param_groups()[3].options().get_lr(), 1e-3 * 0.25);
    // One real step runs.
    for (auto& p : tree->parameters()) {
      if (p.requires_grad()) p.mutable_grad() = torch::ones_like(p);
    }
    opt->step();
  }
}

TEST(ParamGroupsTest, MakeOptimizerRejectsMismatch) {
  auto p = torch::zeros({2}, torch::requires_grad());
  OptimConfig cfg;
  cfg.name = "adafactor";
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{p},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions()));
  EXPECT_THROW(make_optimizer(cfg, std::move(groups)), std::invalid_argument);
  cfg.name = "sgd";
  EXPECT_THROW(make_optimizer(cfg, {}), std::invalid_argument);
  // Groups without options take cfg's.
  cfg.name = "adamw";
  cfg.lr = 0.123;
  std::vector<torch::optim::OptimizerParamGroup> plain;
  plain.emplace_back(std::vector<torch::Tensor>{p});
  auto opt = make_optimizer(cfg, std::move(plain));
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.123);
}

}  // namespace
}  // namespace coca::optim
