// Data-parallel Trainer: two ranks (threads with a Gloo group, tests/dist/dist_test_utils.h)
// against one process on the same global batch, ZeRO-1 against replicated optimizer state,
// and an interrupted two-rank run resuming exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <limits>
#include <map>
#include <mutex>

#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/data/batch.h"
#include "coca/data/sources.h"
#include "coca/data/tokenizer.h"
#include "coca/dist/context.h"
#include "coca/train/checkpoint.h"
#include "coca/train/train_state.h"
#include "coca/train/trainer.h"
#include "dist/dist_test_utils.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::TempDir;
using coca::testing::run_ranks;
using coca::testing::write_file;
namespace fs = std::filesystem;

using Params = std::map<std::string, torch::Tensor>;

Params params_of(model::CoCa& m) {
  Params out;
  for (const auto& item : m->named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

/// The gradients the last optimizer step used (averaged over ranks and clipped).
Params grads_of(model::CoCa& m) {
  Params out;
  for (const auto& item : m->named_parameters()) {
    const auto& g = item.value().grad();
    out[item.key()] = g.defined() ? g.detach().clone() : torch::zeros_like(item.value());
  }
  return out;
}

/// Every tensor within `rtol` of the reference, relative to the reference tensor's scale.
void expect_params_close(const Params& expected, const Params& actual, double rtol,
                         const std::string& what, double floor = 1e-3) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [name, e] : expected) {
    const auto& a = actual.at(name);
    const double scale = std::max(e.abs().max().item<double>(), floor);
    const double diff = (a - e).abs().max().item<double>();
    EXPECT_LE(diff, rtol * scale) << what << ": " << name << " differs by " << diff;
  }
}

/// A tiny model and SentencePiece model on the synthetic source (as trainer_test.cpp).
class DistTrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    coca::testing::train_synthetic_tokenizer(dir_->path(), 128, 3);

    // One initial checkpoint every trainer starts from (train.init_from): ranks run as
    // threads of this process and share the global generator, so seeding alone would
    // not give every trainer the same initial weights.
    auto cfg = tiny_config(dir_->path() / "init", 1);
    Trainer trainer(cfg);
    init_ = new fs::path(trainer.save_checkpoint());
  }
  static void TearDownTestSuite() {
    delete init_;
    delete dir_;
    init_ = nullptr;
    dir_ = nullptr;
  }

  static config::RunConfig tiny_config(const fs::path& run_dir, int64_t steps) {
    const std::string yaml = fmt::format(R"(
include: ['preset:coca_tiny']
model: {{text: {{vocab_size: 64, context_length: 12}}}}
data:
  sources:
    - {{name: captions, type: synthetic, samples: 128, seed: 3, image_size: 32, text: caption, fraction: 0.5}}
    - {{name: labels, type: synthetic, samples: 128, seed: 4, image_size: 32, text: label, fraction: 0.5}}
  tokenizer: {{type: sentencepiece, path: '{}'}}
  workers: 1
optim: {{name: adafactor, lr: 2.0e-3}}
schedule: {{name: linear, warmup_steps: 2}}
train: {{steps: {}, batch_size: 8, run_dir: '{}', seed: 11}}
dist: {{backend: gloo, timeout_s: 30}}
checkpoint: {{every: 2, keep: 5}}
log: {{every: 1}}
)",
                                         (dir_->path() / "spm.model").string(), steps,
                                         run_dir.string());
    const fs::path file = run_dir.parent_path() / (run_dir.filename().string() + ".yaml");
    write_file(file, yaml);
    auto cfg = config::load_run_config({file.string()}, {});
    if (init_) cfg.train.init_from = init_->string();
    return cfg;
  }

  /// A fixed global batch of 8: random images, random token rows of varying length
  /// (bos, tokens, eos, pads) so the ranks hold different numbers of caption tokens.
  static data::Batch global_batch(int64_t seed) {
    torch::manual_seed(seed);
    data::Batch b;
    const int64_t B = 8, T = 12;
    b.images = torch::randn({B, 3, 32, 32});
    b.text = torch::zeros({B, T}, torch::kInt64);
    for (int64_t i = 0; i < B; ++i) {
      const int64_t len = 3 + (i * 5 + seed) % (T - 3);
      b.text[i][0] = 2;
      b.text[i].slice(0, 1, len - 1) = torch::randint(4, 48, {len - 2}, torch::kInt64);
      b.text[i][len - 1] = 3;
      b.keys.push_back(std::to_string(i));
    }
    return b;
  }

  /// The rows `rows` of `b` as a batch.
  static data::Batch rows_of(const data::Batch& b, const std::vector<int64_t>& rows) {
    data::Batch out;
    const auto index = torch::tensor(rows, torch::kInt64);
    out.images = b.images.index_select(0, index);
    out.text = b.text.index_select(0, index);
    for (int64_t r : rows) out.keys.push_back(b.keys[static_cast<size_t>(r)]);
    return out;
  }

  static TempDir* dir_;
  static fs::path* init_;
};
TempDir* DistTrainerTest::dir_ = nullptr;
fs::path* DistTrainerTest::init_ = nullptr;

struct RunOutcome {
  std::vector<StepStats> stats;
  std::vector<Params> grads;  ///< after each step
  Params params;
};

/// 3 steps on 2 ranks; rank r trains on rows_for_rank[r] of each global batch.
RunOutcome two_rank_steps(const config::RunConfig& cfg,
                          const std::vector<std::vector<int64_t>>& rows_for_rank,
                          const std::vector<data::Batch>& batches,
                          const std::function<data::Batch(const data::Batch&,
                                                          const std::vector<int64_t>&)>& rows_of,
                          Params* rank1_params = nullptr) {
  RunOutcome out;
  std::mutex mutex;
  const auto results = run_ranks(2, [&](dist::Context& ctx) {
    Trainer trainer(cfg, ctx);
    std::vector<StepStats> stats;
    std::vector<Params> grads;
    for (const auto& b : batches) {
      stats.push_back(trainer.train_step(rows_of(b, rows_for_rank[ctx.rank])));
      grads.push_back(grads_of(trainer.model()));
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (ctx.rank == 0) {
      out.stats = stats;
      out.grads = grads;
      out.params = params_of(trainer.model());
    } else if (rank1_params) {
      *rank1_params = params_of(trainer.model());
    }
  });
  EXPECT_RANKS_OK(results);
  return out;
}

/// Step-math config: AdamW with a large epsilon. Adafactor and AdamW with a tiny epsilon
/// move every element by about lr * sign(gradient) in the first steps, so an element
/// whose gradient is at the rounding level (e.g. the key part of in_proj_bias, whose
/// exact gradient is 0) moves by +-lr depending on the summation order; with eps 1e-3 the
/// update is smooth in the gradient and the comparison measures the gradient's agreement.
config::RunConfig smooth_optimizer(config::RunConfig cfg) {
  cfg.optim.name = "adamw";
  cfg.optim.adam_eps = 1e-3;
  cfg.optim.lr = 5e-3;
  return cfg;
}

void expect_run_close(const RunOutcome& one, const RunOutcome& two, const std::string& what) {
  ASSERT_EQ(one.grads.size(), two.grads.size());
  for (size_t i = 0; i < one.grads.size(); ++i) {
    expect_params_close(one.grads[i], two.grads[i], 1e-5, what + " gradients of step " +
                                                              std::to_string(i + 1),
                        /*floor=*/1e-12);
  }
  expect_params_close(one.params, two.params, 1e-5, what + " parameters");
}

void expect_stats_close(const std::vector<StepStats>& one, const std::vector<StepStats>& two) {
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_NEAR(two[i].loss_contrastive, one[i].loss_contrastive,
                1e-5 * std::abs(one[i].loss_contrastive)) << "step " << i;
    EXPECT_NEAR(two[i].loss_caption, one[i].loss_caption, 1e-5 * std::abs(one[i].loss_caption))
        << "step " << i;
    EXPECT_NEAR(two[i].grad_norm, one[i].grad_norm, 1e-4 * one[i].grad_norm) << "step " << i;
    EXPECT_EQ(two[i].samples, one[i].samples);
    EXPECT_EQ(two[i].caption_tokens, one[i].caption_tokens);
    EXPECT_FALSE(two[i].skipped);
  }
}

// Without accumulation, two ranks holding rows [0, 4) and [4, 8) of every global batch
// must train exactly like one process on the whole batch: the gathered contrastive loss
// sees all 8 pairs, the caption loss is the global token mean.
TEST_F(DistTrainerTest, TwoRanksMatchOneProcessOnTheGlobalBatch) {
  TempDir tmp;
  const auto cfg = smooth_optimizer(tiny_config(tmp / "run", 3));
  std::vector<data::Batch> batches = {global_batch(1), global_batch(2), global_batch(3)};
  // The global batches differ between the two ranks in caption tokens (checked below).
  ASSERT_NE(batches[0].text.slice(0, 0, 4).ne(0).sum().item<int64_t>(),
            batches[0].text.slice(0, 4, 8).ne(0).sum().item<int64_t>());

  RunOutcome one;
  {
    Trainer trainer(cfg);
    for (const auto& b : batches) {
      one.stats.push_back(trainer.train_step(b));
      one.grads.push_back(grads_of(trainer.model()));
    }
    one.params = params_of(trainer.model());
  }
  Params rank1;
  const auto two =
      two_rank_steps(cfg, {{0, 1, 2, 3}, {4, 5, 6, 7}}, batches, rows_of, &rank1);
  expect_stats_close(one.stats, two.stats);
  expect_run_close(one, two, "2 ranks vs 1");
  for (const auto& [name, p] : two.params) EXPECT_TRUE(torch::equal(p, rank1.at(name))) << name;
  // The training moved the weights (the comparison is not between initial weights).
  Params init;
  {
    model::CoCa m(cfg.model);
    load_model_weights(m, *init_);
    init = params_of(m);
  }
  double moved = 0;
  for (const auto& [name, p] : one.params) {
    moved = std::max(moved, (p - init.at(name)).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4);
}

// With accumulation the contrastive negatives are those of a micro-batch. Per-rank
// micro-batches of 2 on 2 ranks gather global micro-batches of 4: micro-batch k is rank
// 0's rows then rank 1's rows. One process with micro_batch_size 4 sees the same global
// micro-batches when rank r's rows are {4k + 2r, 4k + 2r + 1 : k = 0, 1} of its batch.
TEST_F(DistTrainerTest, TwoRanksMatchOneProcessWithMicroBatches) {
  TempDir tmp;
  auto one_cfg = smooth_optimizer(tiny_config(tmp / "one", 3));
  one_cfg.train.micro_batch_size = 4;
  auto two_cfg = one_cfg;
  two_cfg.train.micro_batch_size = 2;
  std::vector<data::Batch> batches = {global_batch(4), global_batch(5), global_batch(6)};

  RunOutcome one;
  {
    Trainer trainer(one_cfg);
    for (const auto& b : batches) {
      one.stats.push_back(trainer.train_step(b));
      one.grads.push_back(grads_of(trainer.model()));
    }
    one.params = params_of(trainer.model());
  }
  const auto two = two_rank_steps(two_cfg, {{0, 1, 4, 5}, {2, 3, 6, 7}}, batches, rows_of);
  expect_stats_close(one.stats, two.stats);
  expect_run_close(one, two, "2 ranks x 2 micro vs 1 x 2 micro");
}

TEST_F(DistTrainerTest, ZeroStageOneMatchesReplicatedOptimizer) {
  TempDir tmp;
  auto cfg = tiny_config(tmp / "run", 3);
  std::vector<data::Batch> batches = {global_batch(7), global_batch(8), global_batch(9)};
  const auto plain = two_rank_steps(cfg, {{0, 1, 2, 3}, {4, 5, 6, 7}}, batches, rows_of);
  cfg.dist.zero_stage = 1;
  Params rank1;
  const auto zero = two_rank_steps(cfg, {{0, 1, 2, 3}, {4, 5, 6, 7}}, batches, rows_of, &rank1);
  expect_params_close(plain.params, zero.params, 1e-6, "ZeRO-1 vs replicated");
  for (const auto& [name, p] : zero.params) EXPECT_TRUE(torch::equal(p, rank1.at(name))) << name;
}

// A NaN sample on one rank makes every rank skip the step, with no rank left waiting in a
// collective and no weight changed (else the ranks would disagree on the weights). Here
// the gathered image features also carry the NaN to rank 0's contrastive loss; the
// all-reduced loss values in train_step cover a non-finite value on one rank only.
TEST_F(DistTrainerTest, NonFiniteLossOnOneRankSkipsTheStepOnAll) {
  TempDir tmp;
  const auto cfg = tiny_config(tmp / "run", 3);
  const auto batch = global_batch(10);
  std::mutex mutex;
  std::vector<StepStats> stats(2);
  std::vector<bool> unchanged(2, false);
  const auto results = run_ranks(2, [&](dist::Context& ctx) {
    Trainer trainer(cfg, ctx);
    const Params before = params_of(trainer.model());
    auto part = rows_of(batch, ctx.rank == 0 ? std::vector<int64_t>{0, 1, 2, 3}
                                             : std::vector<int64_t>{4, 5, 6, 7});
    if (ctx.rank == 1) part.images[2].fill_(std::numeric_limits<float>::quiet_NaN());
    const StepStats s = trainer.train_step(part);
    bool same = true;
    const Params after = params_of(trainer.model());
    for (const auto& [name, p] : before) same = same && torch::equal(p, after.at(name));
    std::lock_guard<std::mutex> lock(mutex);
    stats[ctx.rank] = s;
    unchanged[ctx.rank] = same;
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(stats[r].skipped) << "rank " << r;
    EXPECT_TRUE(unchanged[r]) << "rank " << r;
  }
}

TEST(DistTrainerConfigTest, BatchSizeMustSplitOverRanks) {
  config::RunConfig cfg;
  cfg.train.batch_size = 7;
  const auto results = run_ranks(2, [&](dist::Context& ctx) {
    try {
      Trainer trainer(cfg, ctx);
      ADD_FAILURE() << "no error for batch 7 on 2 ranks";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("train.batch_size"), std::string::npos) << e.what();
    }
  });
  EXPECT_RANKS_OK(results);
}

// A real two-rank run through the loader with ZeRO-1, stopped after 2 of 4 steps and
// resumed by new trainers, ends with the same weights and data cursors as the
// uninterrupted run; a one-process run refuses the two-rank checkpoint.
TEST_F(DistTrainerTest, TwoRankRunResumesExactlyWithShardedOptimizer) {
  TempDir tmp;
  auto make = [&](const std::string& name) {
    auto cfg = tiny_config(tmp / name, 4);
    cfg.dist.zero_stage = 1;
    return cfg;
  };
  struct Final {
    Params params;
    std::string cursor[2];
  };
  auto run = [&](const config::RunConfig& cfg, int64_t stop_after, Final* final) {
    std::mutex mutex;
    const auto results = run_ranks(2, [&](dist::Context& ctx) {
      Trainer trainer(cfg, ctx);
      ASSERT_EQ(trainer.fit(stop_after), 0);
      if (!final) return;
      std::lock_guard<std::mutex> lock(mutex);
      final->cursor[ctx.rank] = trainer.state().data_cursor;
      if (ctx.rank == 0) final->params = params_of(trainer.model());
    });
    EXPECT_RANKS_OK(results);
  };
  Final full, split;
  run(make("full"), 0, &full);
  run(make("split"), 2, nullptr);
  auto resume = make("split");
  resume.train.resume = "auto";
  run(resume, 0, &split);

  ASSERT_FALSE(full.params.empty());
  for (const auto& [name, p] : full.params) {
    EXPECT_TRUE(torch::equal(p, split.params.at(name))) << name;
  }
  EXPECT_EQ(full.cursor[0], split.cursor[0]);
  EXPECT_EQ(full.cursor[1], split.cursor[1]);
  EXPECT_NE(full.cursor[0], full.cursor[1]);

  // The checkpoint holds both ranks' cursors and optimizer shards.
  const auto ckpt = resolve_checkpoint(tmp / "full" / "checkpoints");
  const auto state = TrainState::load(ckpt / "train_state.yaml");
  EXPECT_EQ(state.world_size, 2);
  EXPECT_EQ(state.step, 4);
  EXPECT_EQ(state.samples_seen, 32);
  EXPECT_EQ(state.data_cursor, full.cursor[0]);
  ASSERT_EQ(state.rank_cursors.size(), 1u);
  EXPECT_EQ(state.rank_cursors[0], full.cursor[1]);
  EXPECT_TRUE(fs::exists(ckpt / "optim_rank0.pt"));
  EXPECT_TRUE(fs::exists(ckpt / "optim_rank1.pt"));
  EXPECT_FALSE(fs::exists(ckpt / "optim.pt"));

  // One process cannot continue a two-rank run.
  auto single = make("full");
  single.dist.zero_stage = 0;
  Trainer trainer(single);
  try {
    trainer.load_checkpoint(ckpt);
    ADD_FAILURE() << "a 2-rank checkpoint loaded into 1 rank";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2 ranks"), std::string::npos) << msg;
    EXPECT_NE(msg.find("this run has 1"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace coca::train
