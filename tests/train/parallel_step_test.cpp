// The step split into concurrent row blocks (train/parallel_step.h) against the same batch
// in one piece: same losses, same parameter gradients (float64, so only summation order
// differs), for both layouts, uneven blocks, the caption-only loss and a non-finite loss.
#include "coca/train/parallel_step.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <map>
#include <string>

#include "coca/config/config_io.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::SeededTest;

model::CoCaConfig tiny(const std::string& layout) {
  auto cfg = config::model_from_yaml(config::preset_yaml("coca_tiny"), "coca_tiny");
  cfg.layout = layout;
  return cfg;
}

struct Inputs {
  torch::Tensor images, text;
  int64_t tokens = 0;
};

Inputs make_inputs(const model::CoCaConfig& cfg, int64_t batch) {
  Inputs in;
  in.images = torch::randn({batch, 3, cfg.vision.image_size, cfg.vision.image_size},
                           torch::kDouble);
  in.text = torch::randint(1, cfg.text.vocab_size, {batch, cfg.text.context_length}, torch::kLong);
  // Padding at the end of some rows, as real captions have.
  for (int64_t i = 0; i < batch; i += 2) {
    in.text[i].slice(0, cfg.text.context_length - 3 - i % 4).fill_(cfg.text.pad_id);
  }
  in.tokens = in.text.slice(1, 1).ne(cfg.text.pad_id).sum().item<int64_t>();
  return in;
}

using Grads = std::map<std::string, torch::Tensor>;

Grads take_grads(model::CoCa& m) {
  Grads g;
  for (auto& p : m->named_parameters()) {
    if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
    p.value().mutable_grad().reset();
  }
  return g;
}

/// The reference: the whole batch in one forward and one backward.
std::pair<double, double> one_piece(model::CoCa& m, const Inputs& in, const CoCaLoss& loss) {
  const auto out = m->forward(in.images, in.text);
  auto con = loss.lambda_con != 0
                 ? contrastive_loss(out.image_features, out.text_features, out.logit_scale,
                                    loss.reduction) * loss.lambda_con
                 : torch::zeros({}, torch::kDouble);
  auto cap = caption_loss(out.logits, in.text, loss.pad_id, loss.label_smoothing).sum *
             (loss.lambda_cap / static_cast<double>(in.tokens));
  (con + cap).backward();
  return {con.item<double>(), cap.item<double>()};
}

void expect_same_grads(const Grads& want, const Grads& got) {
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, g] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const double scale = std::max(1.0, g.abs().max().item<double>());
    EXPECT_LT((got.at(name) - g).abs().max().item<double>(), 1e-11 * scale) << name;
  }
}

void check_layout(const std::string& layout, int64_t batch, int64_t shards, CoCaLoss loss,
                  const std::string& stem = "patch") {
  auto cfg = tiny(layout);
  cfg.vision.stem = stem;
  model::CoCa m(cfg);
  m->to(torch::kDouble);
  const auto in = make_inputs(cfg, batch);
  loss.pad_id = cfg.text.pad_id;
  const auto [con, cap] = one_piece(m, in, loss);
  const auto want = take_grads(m);

  ShardedStepOptions options;
  options.shards = shards;
  const auto got_loss = sharded_forward_backward(m, in.images, in.text, loss,
                                                 loss.lambda_cap / in.tokens, options);
  EXPECT_TRUE(got_loss.finite);
  EXPECT_NEAR(got_loss.contrastive, con, 1e-12);
  EXPECT_NEAR(got_loss.caption, cap, 1e-12);
  expect_same_grads(want, take_grads(m));
}

/// BatchNorm statistics after `steps` forwards in train mode.
std::vector<torch::Tensor> buffers(model::CoCa& m) {
  std::vector<torch::Tensor> out;
  for (const auto& b : m->buffers()) out.push_back(b.clone());
  return out;
}

class ParallelStepTest : public SeededTest {};

TEST_F(ParallelStepTest, TwoBlocksGiveTheOnePieceGradientPaperLayout) {
  check_layout("paper", 6, 2, CoCaLoss{});
}

TEST_F(ParallelStepTest, UnevenBlocksGiveTheOnePieceGradientOpenClipLayout) {
  CoCaLoss loss;
  loss.label_smoothing = 0.1;
  check_layout("open_clip", 7, 3, loss);
}

// The conv stem's BatchNorm mixes rows: the blocks must still see the whole batch's
// statistics (the gradient through the batch mean and variance included) and update the
// running statistics once, as the one-piece step does.
TEST_F(ParallelStepTest, ConvStemBatchNormSeesTheWholeBatch) {
  check_layout("paper", 6, 2, CoCaLoss{}, "conv");
  auto cfg = tiny("paper");
  cfg.vision.stem = "conv";
  model::CoCa a(cfg);
  a->to(torch::kDouble);
  auto b = std::dynamic_pointer_cast<model::CoCaImpl>(a->clone());
  const auto in = make_inputs(cfg, 5);
  CoCaLoss loss;
  loss.pad_id = cfg.text.pad_id;
  one_piece(a, in, loss);
  ShardedStepOptions options;
  options.shards = 2;
  model::CoCa bm(b);
  sharded_forward_backward(bm, in.images, in.text, loss, loss.lambda_cap / in.tokens, options);
  const auto want = buffers(a), got = buffers(bm);
  ASSERT_EQ(want.size(), 3u * coca::model::conv_stem_channels(cfg.vision).size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-12, 1e-12)) << "buffer " << i;
  }
}

TEST_F(ParallelStepTest, SumReductionAndOneRowPerBlock) {
  CoCaLoss loss;
  loss.reduction = ContrastiveReduction::kSum;
  check_layout("paper", 4, 4, loss);
}

TEST_F(ParallelStepTest, CaptionOnlyLeavesContrastiveParametersWithoutGradient) {
  CoCaLoss loss;
  loss.lambda_con = 0;
  const auto cfg = tiny("paper");
  model::CoCa m(cfg);
  m->to(torch::kDouble);
  const auto in = make_inputs(cfg, 4);
  loss.pad_id = cfg.text.pad_id;
  one_piece(m, in, loss);
  const auto want = take_grads(m);
  ShardedStepOptions options;
  const auto r = sharded_forward_backward(m, in.images, in.text, loss, loss.lambda_cap / in.tokens,
                                          options);
  EXPECT_EQ(r.contrastive, 0.0);
  const auto got = take_grads(m);
  expect_same_grads(want, got);
  EXPECT_FALSE(got.count("logit_scale"));
}

TEST_F(ParallelStepTest, NonFiniteLossSkipsTheBackward) {
  const auto cfg = tiny("paper");
  model::CoCa m(cfg);
  m->to(torch::kDouble);
  auto in = make_inputs(cfg, 4);
  in.images[1][0][0][0] = std::numeric_limits<double>::quiet_NaN();
  ShardedStepOptions options;
  CoCaLoss loss;
  loss.pad_id = cfg.text.pad_id;
  const auto r = sharded_forward_backward(m, in.images, in.text, loss, 2.0 / in.tokens, options);
  EXPECT_FALSE(r.finite);
  EXPECT_TRUE(take_grads(m).empty());
}

TEST_F(ParallelStepTest, AutoShardsOnePerThreadOnlyWhereItApplies) {
  EXPECT_EQ(resolve_batch_shards(0, 2, 64, false, false), 2);
  EXPECT_EQ(resolve_batch_shards(0, 4, 64, false, false), 4);
  EXPECT_EQ(resolve_batch_shards(0, 1, 64, false, false), 1);   // one thread
  EXPECT_EQ(resolve_batch_shards(0, 2, 64, true, false), 1);    // CUDA
  EXPECT_EQ(resolve_batch_shards(0, 2, 64, false, true), 1);    // several ranks
  EXPECT_EQ(resolve_batch_shards(0, 2, 63, false, false), 1);   // uneven
  EXPECT_EQ(resolve_batch_shards(0, 2, 2, false, false), 1);    // blocks of one row
  EXPECT_EQ(resolve_batch_shards(3, 2, 64, false, false), 3);   // explicit wins
}

}  // namespace
}  // namespace coca::train
