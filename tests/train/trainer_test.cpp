#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <fstream>

#include "coca/config/config_io.h"
#include "coca/data/sources.h"
#include "coca/data/tokenizer.h"
#include "coca/train/checkpoint.h"
#include "coca/train/trainer.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::TempDir;
using coca::testing::read_file;
using coca::testing::write_file;
namespace fs = std::filesystem;

/// A tiny run on the synthetic source (half captions, half labels-as-text) with a
/// SentencePiece model trained here on the source's own text.
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    coca::testing::train_synthetic_tokenizer(dir_->path(), 256, 3);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static config::RunConfig tiny_config(const fs::path& run_dir, int64_t steps) {
    const std::string yaml = fmt::format(R"(
include: ['preset:coca_tiny']
model: {{text: {{vocab_size: 96, context_length: 16}}}}
data:
  sources:
    - {{name: captions, type: synthetic, samples: 256, seed: 3, image_size: 32, text: caption, fraction: 0.5}}
    - {{name: labels, type: synthetic, samples: 256, seed: 4, image_size: 32, text: label, fraction: 0.5}}
  tokenizer: {{type: sentencepiece, path: '{}'}}
  workers: 2
optim: {{name: adafactor, lr: 2.0e-3}}
schedule: {{name: linear, warmup_steps: 2}}
train: {{steps: {}, batch_size: 16, run_dir: '{}', seed: 11}}
checkpoint: {{every: 3, keep: 5}}
log: {{every: 1}}
)",
                                         (dir_->path() / "spm.model").string(), steps,
                                         run_dir.string());
    write_file(run_dir.parent_path() / (run_dir.filename().string() + ".yaml"), yaml);
    return config::load_run_config(
        {(run_dir.parent_path() / (run_dir.filename().string() + ".yaml")).string()}, {});
  }

  static TempDir* dir_;
};
TempDir* TrainerTest::dir_ = nullptr;

std::vector<double> losses_of(const fs::path& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto pos = line.find("\"loss\":");
    if (line.find("\"kind\":\"train\"") == std::string::npos || pos == std::string::npos) continue;
    out.push_back(std::stod(line.substr(pos + 7)));
  }
  return out;
}

TEST_F(TrainerTest, LossFallsOnTinySyntheticRun) {
  TempDir tmp;
  auto cfg = tiny_config(tmp / "run", 40);
  cfg.checkpoint.every = 0;
  Trainer trainer(cfg);
  ASSERT_EQ(trainer.fit(), 0);
  const auto losses = losses_of(tmp / "run" / "metrics.jsonl");
  ASSERT_EQ(losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += losses[i] / 5;
    last += losses[losses.size() - 1 - i] / 5;
  }
  EXPECT_LT(last, first * 0.85) << "first " << first << " last " << last;
  EXPECT_TRUE(fs::exists(tmp / "run" / "config.yaml"));
  EXPECT_EQ(trainer.state().step, 40);
  EXPECT_TRUE(Checkpointer(tmp / "run" / "checkpoints", 1).latest().has_value());
}

TEST_F(TrainerTest, ResumeIsBitwiseExact) {
  TempDir tmp;
  // 6 steps in one go.
  {
    Trainer trainer(tiny_config(tmp / "full", 6));
    ASSERT_EQ(trainer.fit(), 0);
  }
  // The same run stopped after 3 steps, then a new trainer resuming it to 6.
  {
    auto cfg = tiny_config(tmp / "split", 6);
    Trainer trainer(cfg);
    ASSERT_EQ(trainer.fit(/*stop_after=*/3), 0);
    EXPECT_EQ(trainer.state().step, 3);
  }
  {
    auto cfg = tiny_config(tmp / "split", 6);
    cfg.train.resume = "auto";
    Trainer trainer(cfg);
    ASSERT_EQ(trainer.fit(), 0);
    EXPECT_EQ(trainer.state().step, 6);
  }
  const auto full = resolve_checkpoint(tmp / "full" / "checkpoints");
  const auto split = resolve_checkpoint(tmp / "split" / "checkpoints");
  model::CoCa a(tiny_config(tmp / "x", 1).model), b(tiny_config(tmp / "y", 1).model);
  load_model_weights(a, full);
  load_model_weights(b, split);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
  EXPECT_EQ(losses_of(tmp / "full" / "metrics.jsonl"), losses_of(tmp / "split" / "metrics.jsonl"));
}

}  // namespace
}  // namespace coca::train

namespace coca::train {
namespace {

TEST_F(TrainerTest, Bf16AutocastOnCpuTracksFp32) {
  // bf16 autocast on the CPU (matmuls and convolutions in bf16, LayerNorm and the losses
  // in float32): the first step's loss, computed from the same weights and batch, agrees
  // with the fp32 step to bf16's precision, and training still lowers the loss.
  TempDir tmp;
  auto fp32 = tiny_config(tmp / "fp32", 20);
  auto bf16 = tiny_config(tmp / "bf16", 20);
  bf16.train.precision = "bf16";
  for (auto* cfg : {&fp32, &bf16}) {
    cfg->checkpoint.every = 0;
    Trainer trainer(*cfg);
    ASSERT_EQ(trainer.fit(), 0);
  }
  const auto a = losses_of(tmp / "fp32" / "metrics.jsonl");
  const auto b = losses_of(tmp / "bf16" / "metrics.jsonl");
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), 20u);
  EXPECT_NEAR(b[0], a[0], 0.02 * a[0]);
  EXPECT_NE(b[0], a[0]) << "the bf16 run computed in float32";
  EXPECT_LT((b[17] + b[18] + b[19]) / 3, (b[0] + b[1] + b[2]) / 3 * 0.9);
}

}  // namespace
}  // namespace coca::train
