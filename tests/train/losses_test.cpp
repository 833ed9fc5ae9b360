// CoCa losses against explicit log-softmax loops, the shifted-label property, and the
// open_clip tiny CoCa reference (tests/data/golden/coca_losses.json).
#include "coca/train/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "golden_json.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::golden_tensor;
using coca::testing::load_golden_json;

/// -log softmax(row)[target], computed with scalar loops in double.
double nll(const std::vector<double>& row, int64_t target) {
  double m = row[0];
  for (double v : row) m = std::max(m, v);
  double s = 0;
  for (double v : row) s += std::exp(v - m);
  return -(row[target] - m - std::log(s));
}

std::vector<double> row_of(const torch::Tensor& t2d, int64_t i) {
  auto r = t2d[i].to(torch::kDouble).contiguous();
  return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

torch::Tensor normalized(torch::Tensor x) { return x / x.norm(2, -1, true); }

class LossesTest : public coca::testing::SeededTest {};

TEST_F(LossesTest, ContrastiveMatchesExplicitLoops) {
  const int64_t b = 3, e = 4;
  auto img = normalized(torch::randn({b, e}, torch::kDouble));
  auto txt = normalized(torch::randn({b, e}, torch::kDouble));
  const double scale = 1.0 / 0.07;
  // logits[i][j] = scale * <img_i, txt_j> by loops
  double l_i2t = 0, l_t2i = 0;
  for (int64_t i = 0; i < b; ++i) {
    std::vector<double> row_i(b), row_t(b);
    for (int64_t j = 0; j < b; ++j) {
      double dot_it = 0, dot_ti = 0;
      for (int64_t k = 0; k < e; ++k) {
        dot_it += img[i][k].item<double>() * txt[j][k].item<double>();
        dot_ti += txt[i][k].item<double>() * img[j][k].item<double>();
      }
      row_i[j] = scale * dot_it;
      row_t[j] = scale * dot_ti;
    }
    l_i2t += nll(row_i, i) / b;
    l_t2i += nll(row_t, i) / b;
  }
  auto s = torch::tensor(scale, torch::kDouble);
  EXPECT_NEAR(contrastive_loss(img, txt, s, ContrastiveReduction::kMean).item<double>(),
              (l_i2t + l_t2i) / 2, 1e-12);
  EXPECT_NEAR(contrastive_loss(img, txt, s, ContrastiveReduction::kSum).item<double>(),
              l_i2t + l_t2i, 1e-12);
}

TEST_F(LossesTest, GlobalColumnsWithOffsetsAverageToSingleProcessLoss) {
  auto img = normalized(torch::randn({6, 8}, torch::kDouble));
  auto txt = normalized(torch::randn({6, 8}, torch::kDouble));
  auto s = torch::tensor(10.0, torch::kDouble);
  const double whole = contrastive_loss(img, txt, s).item<double>();
  double ranks = 0;
  for (int64_t r = 0; r < 2; ++r) {
    ranks += contrastive_loss(img.slice(0, 3 * r, 3 * r + 3), txt.slice(0, 3 * r, 3 * r + 3), img,
                              txt, s, 3 * r)
                 .item<double>();
  }
  EXPECT_NEAR(ranks / 2, whole, 1e-12);
  EXPECT_THROW(contrastive_loss(img.slice(0, 0, 3), txt.slice(0, 0, 3), img, txt, s, 4),
               c10::Error);
}

TEST_F(LossesTest, CaptionMatchesExplicitLoopsWithPadAndSmoothing) {
  const int64_t b = 2, t = 5, v = 7, pad = 0;
  auto text = torch::tensor({{5, 3, 4, 6, 2}, {5, 1, 6, 0, 0}}, torch::kLong);
  auto logits = torch::randn({b, t - 1, v}, torch::kDouble);
  for (double eps : {0.0, 0.1}) {
    SCOPED_TRACE(eps);
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j + 1 < t; ++j) {
        const int64_t target = text[i][j + 1].item<int64_t>();
        if (target == pad) continue;
        const auto row = row_of(logits[i], j);
        double smooth = 0;
        for (int64_t k = 0; k < v; ++k) smooth += nll(row, k) / v;
        sum += (1 - eps) * nll(row, target) + eps * smooth;
        ++count;
      }
    }
    const auto got = caption_loss(logits, text, pad, eps);
    EXPECT_EQ(got.num_tokens, 6);  // 4 + 2 real targets
    EXPECT_EQ(got.num_tokens, count);
    EXPECT_NEAR(got.sum.item<double>(), sum, 1e-12);
    EXPECT_NEAR(got.loss.item<double>(), sum / count, 1e-12);
  }
}

TEST_F(LossesTest, CaptionTargetsAreShiftedNotCopied) {
  // Known bug: training on unshifted labels lets the decoder copy its input. Logits that
  // put all mass on the CURRENT input token must score badly; on the NEXT token, ~0.
  const int64_t v = 10;
  auto text = torch::tensor({{8, 1, 2, 3, 9, 0}, {8, 4, 4, 5, 6, 9}}, torch::kLong);
  const int64_t b = text.size(0), t = text.size(1);
  auto copy = torch::zeros({b, t - 1, v});
  auto next = torch::zeros({b, t - 1, v});
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j + 1 < t; ++j) {
      copy[i][j][text[i][j].item<int64_t>()] = 30.0;
      next[i][j][text[i][j + 1].item<int64_t>()] = 30.0;
    }
  }
  EXPECT_LT(caption_loss(next, text, 0).loss.item<double>(), 1e-6);
  // Only the repeated token (4 -> 4) is predicted right by copying: 8 of 9 targets cost ~30.
  EXPECT_GT(caption_loss(copy, text, 0).loss.item<double>(), 20.0);
}

TEST_F(LossesTest, CaptionIgnoresPadPositions) {
  auto text = torch::tensor({{5, 3, 0, 0}}, torch::kLong);
  auto logits = torch::randn({1, 3, 6});
  const auto base = caption_loss(logits, text, 0);
  EXPECT_EQ(base.num_tokens, 1);
  auto changed = logits.clone();
  changed[0][1] += torch::randn({6}) * 10;  // positions predicting pad targets
  changed[0][2] += torch::randn({6}) * 10;
  EXPECT_FLOAT_EQ(caption_loss(changed, text, 0).loss.item<float>(), base.loss.item<float>());
  auto all_pad = torch::zeros({1, 4}, torch::kLong);
  const auto none = caption_loss(logits, all_pad, 0);
  EXPECT_EQ(none.num_tokens, 0);
  EXPECT_EQ(none.loss.item<float>(), 0.0f);
  EXPECT_THROW(caption_loss(logits, torch::zeros({1, 3}, torch::kLong), 0), c10::Error);
}

TEST_F(LossesTest, CoCaLossWeightsParts) {
  auto img = normalized(torch::randn({4, 8}));
  auto txt = normalized(torch::randn({4, 8}));
  auto scale = torch::tensor(5.0f);
  auto text = torch::randint(1, 20, {4, 6}, torch::kLong);
  auto logits = torch::randn({4, 5, 20});
  TrainConfig cfg;
  cfg.lambda_con = 0.5;
  cfg.lambda_cap = 3.0;
  cfg.contrastive_reduction = "sum";
  const auto loss = CoCaLoss::from_config(cfg, 0);
  const auto parts = loss(img, txt, scale, logits, text);
  const double con = contrastive_loss(img, txt, scale, ContrastiveReduction::kSum).item<double>();
  const double cap = caption_loss(logits, text, 0).loss.item<double>();
  EXPECT_NEAR(parts.contrastive.item<double>(), 0.5 * con, 1e-6);
  EXPECT_NEAR(parts.caption.item<double>(), 3.0 * cap, 1e-5);
  EXPECT_NEAR(parts.total.item<double>(), 0.5 * con + 3.0 * cap, 1e-5);
  EXPECT_EQ(parts.caption_tokens, 20);
  cfg.contrastive_reduction = "max";
  EXPECT_THROW(CoCaLoss::from_config(cfg, 0), std::invalid_argument);
}

TEST_F(LossesTest, MatchesOpenClipTinyCoCa) {
  const auto golden = load_golden_json("coca_losses.json");
  const auto& t = golden.at("tensors");
  auto img = golden_tensor(t.at("fwd.image_features"));
  auto txt = golden_tensor(t.at("fwd.text_features"));
  auto scale = golden_tensor(t.at("fwd.logit_scale"));
  auto logits = golden_tensor(t.at("fwd.logits"));
  auto text = golden_tensor(t.at("input.text"));
  const double want_con = golden_tensor(t.at("loss.contrastive")).item<double>();
  const double want_cap = golden_tensor(t.at("loss.caption")).item<double>();  // weighted x2
  ASSERT_EQ(img.scalar_type(), torch::kFloat);
  CoCaLoss loss;
  loss.lambda_con = golden.at("lambda_con").get<double>();
  loss.lambda_cap = golden.at("lambda_cap").get<double>();
  loss.pad_id = golden.at("pad_id").get<int64_t>();
  const auto parts = loss(img, txt, scale, logits, text);
  EXPECT_NEAR(parts.contrastive.item<double>(), want_con, 1e-5);
  EXPECT_NEAR(parts.caption.item<double>(), want_cap, 1e-5);
  EXPECT_NEAR(parts.total.item<double>(), want_con + want_cap, 2e-5);
  EXPECT_EQ(parts.caption_tokens, text.slice(1, 1).ne(0).sum().item<int64_t>());
}

TEST_F(LossesTest, ClampLogitScale) {
  auto p = torch::tensor(7.0f, torch::requires_grad());
  clamp_logit_scale_(p);
  EXPECT_FLOAT_EQ(p.item<float>(), static_cast<float>(std::log(100.0)));
  EXPECT_TRUE(p.requires_grad());
  p.data().fill_(-1.0f);
  clamp_logit_scale_(p);
  EXPECT_FLOAT_EQ(p.item<float>(), 0.0f);
  p.data().fill_(2.0f);
  clamp_logit_scale_(p);
  EXPECT_FLOAT_EQ(p.item<float>(), 2.0f);
}

}  // namespace
}  // namespace coca::train
