#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <random>

#include "coca/config/config_io.h"
#include "coca/data/batch.h"
#include "coca/train/finetune.h"
#include "coca/train/trainer.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::TempDir;
using coca::testing::write_file;
namespace fs = std::filesystem;

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  s.append(data.begin(), data.end());
  return s;
}

/// `n` RGB 32x32 images of 4 trivially separable classes (red, green, blue, yellow flat
/// colour with +-20 noise per pixel), label = i % 4, as IDX files <prefix>-images/labels.idx.
void write_colour_idx(const fs::path& dir, const std::string& prefix, uint32_t n, uint32_t seed) {
  const uint8_t rgb[4][3] = {{200, 30, 30}, {30, 200, 30}, {30, 30, 200}, {200, 200, 30}};
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> noise(-20, 20);
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t c = i % 4;
    labels.push_back(static_cast<uint8_t>(c));
    for (int p = 0; p < 32 * 32; ++p) {
      for (int ch = 0; ch < 3; ++ch) pixels.push_back(static_cast<uint8_t>(rgb[c][ch] + noise(gen)));
    }
  }
  write_file(dir / (prefix + "-images.idx"), idx_bytes({n, 32, 32, 3}, pixels));
  write_file(dir / (prefix + "-labels.idx"), idx_bytes({n}, labels));
}

class FinetuneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_colour_idx(dir_->path(), "train", 128, 1);
    write_colour_idx(dir_->path(), "val", 64, 2);
    write_file(dir_->path() / "classes.txt", "red\ngreen\nblue\nyellow\n");
    coca::testing::train_synthetic_tokenizer(dir_->path(), 256, 3);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string idx_source(const std::string& split) {
    const auto d = dir_->path().string();
    return fmt::format("{{type: idx, path: '{}/{}-images.idx', labels_path: '{}/{}-labels.idx', "
                       "class_names: '{}/classes.txt', text: label}}",
                       d, split, d, split, d);
  }

  /// A tiny classify run on the colour IDX set; `extra` is appended YAML.
  static config::RunConfig classify_config(const fs::path& run_dir, int64_t steps,
                                           const std::string& extra = "") {
    const std::string yaml = fmt::format(R"(
include: ['preset:coca_tiny']
data:
  sources: [{}]
  workers: 1
optim: {{name: adamw, lr: 1.0e-2, weight_decay: 0.0, grad_clip_norm: 0.0}}
schedule: {{name: constant, warmup_fraction: 0.0}}
train: {{task: classify, classify_mode: frozen, steps: {}, batch_size: 16, run_dir: '{}', seed: 5,
         label_smoothing: 0.1, ema_decay: 0.8}}
eval: {{classification: {}, batch_size: 32}}
checkpoint: {{every: 0, keep: 5}}
log: {{every: 1}}
{}
)",
                                         idx_source("train"), steps, run_dir.string(),
                                         idx_source("val"), extra);
    const fs::path file = run_dir.parent_path() / (run_dir.filename().string() + ".yaml");
    write_file(file, yaml);
    return config::load_run_config({file.string()}, {});
  }

  static TempDir* dir_;
};
TempDir* FinetuneTest::dir_ = nullptr;

std::vector<torch::Tensor> snapshot(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

/// A batch of `n` random images with labels i % classes (text unused by classify).
data::Batch random_batch(int64_t n, int64_t classes) {
  data::Batch b;
  b.images = torch::randn({n, 3, 32, 32});
  b.text = torch::zeros({n, 2}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    b.keys.push_back(std::to_string(i));
    b.label_ids.push_back({i % classes});
    b.labels.push_back({"c"});
    b.source_index.push_back(0);
    b.texts.push_back("c");
  }
  return b;
}

TEST(ClassificationLossTest, LabelSmoothingMatchesTargetDistributionFormula) {
  torch::manual_seed(1);
  const auto logits = torch::randn({6, 5}, torch::kDouble);
  const auto labels = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kInt64);
  const double eps = 0.2;
  // Cross-entropy against q = (1 - eps) one_hot + eps / C, with log-softmax by hand.
  const auto z = logits - std::get<0>(logits.max(1, true));
  const auto logp = z - z.exp().sum(1, true).log();
  const auto q = torch::one_hot(labels, 5).to(torch::kDouble) * (1 - eps) + eps / 5;
  const double want = (-(q * logp).sum(1)).mean().item<double>();
  EXPECT_NEAR(classification_loss(logits, labels, eps).item<double>(), want, 1e-6);
  const double plain = (-logp.gather(1, labels.unsqueeze(1))).mean().item<double>();
  EXPECT_NEAR(classification_loss(logits, labels, 0.0).item<double>(), plain, 1e-6);
}

TEST(EmaTest, UpdateIsTheExponentialAverageAndSwapExchanges) {
  auto a = torch::tensor({1.0, -2.0, 4.0});
  Ema ema({{"a", a}}, 0.9);
  const auto a0 = a.clone();
  a.copy_(torch::tensor({3.0, 0.0, -1.0}));
  ema.update();
  const auto s1 = 0.9 * a0 + 0.1 * a;
  EXPECT_TENSOR_NEAR(ema.shadow(0), s1, 1e-6);
  const auto a2 = torch::tensor({0.5, 5.0, 2.0});
  a.copy_(a2);
  ema.update();
  const auto s2 = 0.9 * s1 + 0.1 * a2;
  EXPECT_TENSOR_NEAR(ema.shadow(0), s2, 1e-6);
  ema.swap();
  EXPECT_TENSOR_NEAR(a, s2, 1e-6);
  EXPECT_TENSOR_NEAR(ema.shadow(0), a2, 1e-6);
  ema.swap();
  EXPECT_TENSOR_NEAR(a, a2, 1e-6);
}

TEST(ClassifyAccuracyTest, TopOneAndTopFive) {
  // Row i ranks classes by the logits; the label is at rank 0, 1, 6 (of 7 classes).
  const auto logits = torch::tensor({{9., 1., 2., 3., 4., 5., 6.},
                                     {1., 9., 2., 3., 4., 5., 6.},
                                     {1., 9., 2., 3., 4., 5., 6.}});
  const auto r = classify_accuracy(logits, torch::tensor({0, 6, 0}, torch::kInt64));
  EXPECT_DOUBLE_EQ(r.top1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.top5, 2.0 / 3);
  EXPECT_EQ(r.images, 3);
}

TEST(CollapseWarningTest, FiresOnlyBelowTheFractionOfTheBaseline) {
  EXPECT_TRUE(zero_shot_collapse_warning(0.6, 0.2, 0.5).has_value());
  const auto w = zero_shot_collapse_warning(0.6, 0.29, 0.5);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->find("lambda_con"), std::string::npos) << *w;
  EXPECT_FALSE(zero_shot_collapse_warning(0.6, 0.31, 0.5).has_value());
  EXPECT_FALSE(zero_shot_collapse_warning(0.6, 0.7, 0.5).has_value());
  EXPECT_FALSE(zero_shot_collapse_warning(0.6, 0.0, 0.0).has_value());  // off
  EXPECT_FALSE(zero_shot_collapse_warning(0.0, 0.0, 0.5).has_value());  // no baseline
}

TEST_F(FinetuneTest, FrozenProbeKeepsEveryEncoderParameterAndTrainsTheHead) {
  TempDir tmp;
  ClassifyTrainer trainer(classify_config(tmp / "run", 4));
  const auto model_before = snapshot(*trainer.model());
  const auto head_before = snapshot(*trainer.head());
  for (const auto& p : trainer.model()->parameters()) EXPECT_FALSE(p.requires_grad());
  ASSERT_EQ(trainer.fit(), 0);
  const auto model_after = snapshot(*trainer.model());
  ASSERT_EQ(model_before.size(), model_after.size());
  for (size_t i = 0; i < model_before.size(); ++i) {
    EXPECT_TRUE(torch::equal(model_before[i], model_after[i])) << "model parameter " << i;
  }
  const auto head_after = snapshot(*trainer.head());
  bool changed = false;
  for (size_t i = 0; i < head_before.size(); ++i) {
    changed = changed || !torch::equal(head_before[i], head_after[i]);
  }
  EXPECT_TRUE(changed);
}

TEST_F(FinetuneTest, FullFinetuneStepsTheEncoderWithItsOwnLr) {
  TempDir tmp;
  auto cfg = classify_config(tmp / "full", 2);
  cfg.train.classify_mode = "full";
  cfg.optim.encoder_lr_scale = 0.1;
  cfg.train.ema_decay = 0.0;
  ClassifyTrainer full(cfg);
  // Group lrs: visual.* groups at lr * 0.1, the head's at lr.
  int visual_groups = 0;
  for (const auto& g : full.optimizer().param_groups()) {
    bool visual = false;
    for (const auto& p : g.params()) {
      for (const auto& q : full.model()->visual->parameters()) visual = visual || p.is_same(q);
    }
    visual_groups += visual;
    EXPECT_DOUBLE_EQ(g.options().get_lr(), visual ? 1e-3 : 1e-2);
  }
  EXPECT_GE(visual_groups, 1);
  // AdamW's first step moves every parameter with |grad| >> eps by lr (m/sqrt(v) = sign(g),
  // no weight decay, no clipping): the encoder's largest move is 1e-3, the head's 1e-2.
  {
    torch::NoGradGuard no_grad;
    full.head()->head->weight.normal_(0, 0.5);  // a zero head would block the encoder's gradient
  }
  const auto block = full.model()->visual->transformer->parameters();
  std::vector<torch::Tensor> before;
  for (const auto& p : block) before.push_back(p.detach().clone());
  const auto head_w = full.head()->head->weight.detach().clone();
  full.train_step(random_batch(16, 4));
  double encoder_max = 0;
  for (size_t i = 0; i < block.size(); ++i) {
    encoder_max = std::max(encoder_max, (block[i] - before[i]).abs().max().item<double>());
  }
  EXPECT_NEAR(encoder_max, 1e-3, 1e-5);
  EXPECT_NEAR((full.head()->head->weight - head_w).abs().max().item<double>(), 1e-2, 1e-4);
  // The CoCa poolers and projection the classifier does not use stay frozen.
  for (const auto& p : full.model()->visual->attn_pool->parameters()) {
    EXPECT_FALSE(p.requires_grad());
  }
}

TEST_F(FinetuneTest, FrozenProbeSeparatesTrivialClasses) {
  TempDir tmp;
  auto cfg = classify_config(tmp / "run", 30);
  ClassifyTrainer trainer(cfg);
  const double chance = trainer.evaluate().top1;
  ASSERT_EQ(trainer.fit(), 0);
  const auto r = trainer.evaluate();
  EXPECT_EQ(r.images, 64);
  EXPECT_GT(r.top1, 0.9) << "before training: " << chance;
  // The same number from the checkpoint alone (what `coca eval` reports), EMA applied.
  auto ckpt = load_classifier_checkpoint(tmp / "run" / "checkpoints");
  EXPECT_EQ(ckpt.head->options.num_classes, 4);
  EXPECT_DOUBLE_EQ(evaluate_classifier(ckpt.model, ckpt.head, cfg).top1, r.top1);
  // A new run initialised from it starts from its CoCa weights.
  auto next_cfg = classify_config(tmp / "next", 1);
  next_cfg.train.init_from = (tmp / "run" / "checkpoints").string();
  ClassifyTrainer next(next_cfg);
  const auto a = snapshot(*ckpt.model);
  const auto b = snapshot(*next.model());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST_F(FinetuneTest, ResumeEqualsAStraightRun) {
  TempDir tmp;
  auto cfg = classify_config(tmp / "straight", 6);
  cfg.train.classify_mode = "full";
  cfg.optim.encoder_lr_scale = 0.5;
  ClassifyTrainer straight(cfg);
  ASSERT_EQ(straight.fit(), 0);

  auto split = classify_config(tmp / "split", 6);
  split.train.classify_mode = "full";
  split.optim.encoder_lr_scale = 0.5;
  {
    ClassifyTrainer first(split);
    ASSERT_EQ(first.fit(3), 0);
    EXPECT_EQ(first.state().step, 3);
  }
  split.train.resume = "auto";
  ClassifyTrainer second(split);
  ASSERT_EQ(second.fit(), 0);
  EXPECT_EQ(second.state().step, 6);
  const auto a = snapshot(*straight.model());
  const auto b = snapshot(*second.model());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "model " << i;
  const auto ha = snapshot(*straight.head());
  const auto hb = snapshot(*second.head());
  for (size_t i = 0; i < ha.size(); ++i) EXPECT_TRUE(torch::equal(ha[i], hb[i])) << "head " << i;
  ASSERT_NE(straight.ema(), nullptr);
  ASSERT_NE(second.ema(), nullptr);
  EXPECT_TRUE(torch::equal(straight.ema()->shadow(0), second.ema()->shadow(0)));
}

TEST_F(FinetuneTest, CaptionTaskWithoutContrastiveWeightLeavesContrastiveParamsUntouched) {
  TempDir tmp;
  const std::string yaml = fmt::format(R"(
include: ['preset:coca_tiny']
model: {{text: {{vocab_size: 96, context_length: 16}}}}
data:
  sources: [{{type: synthetic, samples: 64, seed: 3, image_size: 32, text: caption}}]
  tokenizer: {{type: sentencepiece, path: '{}'}}
  workers: 1
optim: {{name: adamw, lr: 1.0e-3, encoder_lr_scale: 0.1}}
train: {{task: caption, lambda_con: 0.0, steps: 2, batch_size: 8, run_dir: '{}'}}
)",
                                       (dir_->path() / "spm.model").string(),
                                       (tmp / "run").string());
  write_file(tmp / "run.yaml", yaml);
  Trainer trainer(config::load_run_config({(tmp / "run.yaml").string()}, {}));
  auto& m = trainer.model();
  std::vector<torch::Tensor> contrastive;
  for (const auto& p : m->visual->attn_pool_contrastive->parameters()) contrastive.push_back(p);
  contrastive.push_back(m->visual->proj);
  contrastive.push_back(m->logit_scale);
  for (const auto& p : m->text->named_parameters()) {
    if (p.key() == "text_projection") contrastive.push_back(p.value());
  }
  ASSERT_GE(contrastive.size(), 4u);
  std::vector<torch::Tensor> before;
  for (const auto& p : contrastive) before.push_back(p.detach().clone());
  const auto decoder_before = snapshot(*m->text_decoder);

  data::Batch b = random_batch(8, 1);
  b.text = torch::randint(3, 90, {8, 16}, torch::kInt64);
  const auto stats = trainer.train_step(b);
  EXPECT_EQ(stats.loss_contrastive, 0.0);
  EXPECT_GT(stats.loss_caption, 0.0);
  for (size_t i = 0; i < contrastive.size(); ++i) {
    const auto& g = contrastive[i].grad();
    EXPECT_TRUE(!g.defined() || g.abs().max().item<double>() == 0.0) << "param " << i;
    EXPECT_TRUE(torch::equal(contrastive[i], before[i])) << "param " << i;
  }
  const auto decoder_after = snapshot(*m->text_decoder);
  bool changed = false;
  for (size_t i = 0; i < decoder_after.size(); ++i) {
    changed = changed || !torch::equal(decoder_before[i], decoder_after[i]);
  }
  EXPECT_TRUE(changed);
}

}  // namespace
}  // namespace coca::train
