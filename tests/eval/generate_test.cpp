#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "coca/eval/generate.h"

namespace coca::eval {
namespace {

// Tokens: 0 BOS, 1 EOS, 2 "a", 3 "b", 4 "c". A first-order Markov model: the next-token
// distribution depends only on the last token.
constexpr int64_t kV = 5;

class MarkovModel : public StepModel {
 public:
  explicit MarkovModel(std::vector<std::vector<double>> p) {
    for (auto& row : p) {
      std::vector<float> logits;
      for (double x : row) logits.push_back(static_cast<float>(std::log(std::max(x, 1e-12))));
      rows_.push_back(torch::tensor(logits));
    }
  }
  torch::Tensor next_logits(const torch::Tensor& tokens) override {
    ++calls;
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; i < tokens.size(0); ++i) {
      out.push_back(rows_[tokens[i][tokens.size(1) - 1].item<int64_t>()]);
    }
    return torch::stack(out);
  }
  void select(const torch::Tensor& index) override { selected.push_back(index.size(0)); }

  int calls = 0;
  std::vector<int64_t> selected;

 private:
  std::vector<torch::Tensor> rows_;
};

// From BOS: a 0.6, b 0.4. After a: EOS 0.4, c 0.35, b 0.25. After b: EOS 0.99, c 0.01.
// After c: EOS 1. Greedy: "a" (log 0.6 + log 0.4 = -1.427); the best sequence is "b"
// (log 0.4 + log 0.99 = -0.926), which beam search (2 beams) finds.
MarkovModel trap() {
  return MarkovModel({{0, 0, 0.6, 0.4, 0},
                      {0, 1, 0, 0, 0},
                      {0, 0.4, 0, 0.25, 0.35},
                      {0, 0.99, 0, 0, 0.01},
                      {0, 1, 0, 0, 0}});
}

TEST(GenerateTest, GreedyTakesTheLikeliestTokenEachStep) {
  auto m = trap();
  GenerateConfig cfg;
  const auto r = generate(m, 2, cfg, {0, 1});
  ASSERT_EQ(r.tokens.size(), 2u);
  EXPECT_EQ(r.tokens[0], (std::vector<int64_t>{2}));
  EXPECT_EQ(r.tokens[1], (std::vector<int64_t>{2}));
  EXPECT_NEAR(r.scores[0], std::log(0.6) + std::log(0.4), 1e-5);
  EXPECT_EQ(m.calls, 2);  // stops once every row has ended
}

TEST(GenerateTest, BeamSearchFindsTheBetterSequenceWithNBest) {
  auto m = trap();
  GenerateConfig cfg;
  cfg.beams = 2;
  cfg.length_penalty = 0.0;  // pure log-probability
  const auto r = generate(m, 1, cfg, {0, 1});
  EXPECT_EQ(r.tokens[0], (std::vector<int64_t>{3}));
  EXPECT_NEAR(r.scores[0], std::log(0.4) + std::log(0.99), 1e-5);
  ASSERT_EQ(r.nbest[0].size(), 2u);
  EXPECT_EQ(r.nbest[0][1], (std::vector<int64_t>{2}));
  ASSERT_FALSE(m.selected.empty());
  EXPECT_EQ(m.selected.front(), 2);  // 1 row expanded to 2 beams
}

TEST(GenerateTest, BeamWidthOneEqualsGreedy) {
  for (double lp : {0.0, 1.0}) {
    auto a = trap();
    auto b = trap();
    GenerateConfig greedy;
    GenerateConfig beam;
    beam.beams = 1;
    beam.length_penalty = lp;
    beam.min_len = greedy.min_len = 2;  // also through the min-length path
    EXPECT_EQ(generate(a, 3, greedy, {0, 1}).tokens, generate(b, 3, beam, {0, 1}).tokens);
  }
}

TEST(GenerateTest, MinLengthBlocksTheEndToken) {
  auto m = trap();
  GenerateConfig cfg;
  cfg.min_len = 2;
  // After "a" the end token is blocked: c (0.35) beats b (0.25); after c only EOS remains.
  EXPECT_EQ(generate(m, 1, cfg, {0, 1}).tokens[0], (std::vector<int64_t>{2, 4}));
}

TEST(GenerateTest, MaxLengthCutsUnfinishedSequences) {
  // "a" forever: no sequence ends before max_len.
  MarkovModel loop({{0, 0, 1, 0, 0}, {0, 1, 0, 0, 0}, {0, 0, 0.9, 0.1, 0}, {0, 0, 0.5, 0.5, 0},
                    {0, 1, 0, 0, 0}});
  GenerateConfig cfg;
  cfg.max_len = 4;
  EXPECT_EQ(generate(loop, 1, cfg, {0, 1}).tokens[0], (std::vector<int64_t>{2, 2, 2, 2}));
  cfg.beams = 3;
  EXPECT_EQ(generate(loop, 1, cfg, {0, 1}).tokens[0].size(), 4u);
}

TEST(GenerateTest, RepetitionPenaltyDiscouragesRepeats) {
  // After "a": a 0.5, EOS 0.45. Without a penalty greedy repeats "a" until max_len; with
  // penalty 2 the logit log(0.5) becomes 2 log(0.5) < log(0.45) and EOS wins.
  MarkovModel m({{0, 0, 1, 0, 0}, {0, 1, 0, 0, 0}, {0, 0.45, 0.5, 0, 0.05}, {0, 1, 0, 0, 0},
                 {0, 1, 0, 0, 0}});
  GenerateConfig cfg;
  cfg.max_len = 5;
  EXPECT_EQ(generate(m, 1, cfg, {0, 1}).tokens[0].size(), 5u);
  cfg.repetition_penalty = 2.0;
  EXPECT_EQ(generate(m, 1, cfg, {0, 1}).tokens[0], (std::vector<int64_t>{2}));
}

TEST(GenerateTest, SamplingIsSeededAndTopKOneIsGreedy) {
  MarkovModel uniform({{0, 0.2, 0.3, 0.3, 0.2}, {0, 1, 0, 0, 0}, {0, 0.25, 0.25, 0.25, 0.25},
                       {0, 0.25, 0.25, 0.25, 0.25}, {0, 0.25, 0.25, 0.25, 0.25}});
  GenerateConfig cfg;
  cfg.top_p = 0.95;
  cfg.max_len = 12;
  const auto a = generate(uniform, 8, cfg, {0, 1}, 7);
  const auto b = generate(uniform, 8, cfg, {0, 1}, 7);
  EXPECT_EQ(a.tokens, b.tokens);
  bool differs = false;
  for (int i = 1; i < 8; ++i) differs = differs || a.tokens[i] != a.tokens[0];
  EXPECT_TRUE(differs) << "8 samples from a near-uniform model should not all agree";
  auto t1 = trap();
  auto t2 = trap();
  GenerateConfig top1;
  top1.top_k = 1;
  EXPECT_EQ(generate(t1, 2, top1, {0, 1}, 3).tokens, generate(t2, 2, GenerateConfig{}, {0, 1}).tokens);
}

TEST(GenerateTest, TopPKeepsTheSmallestNucleus) {
  // From BOS: a 0.6, b 0.4. top_p 0.5: only "a" survives (it alone reaches 0.5).
  auto m = trap();
  GenerateConfig cfg;
  cfg.top_p = 0.5;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    EXPECT_EQ(generate(m, 1, cfg, {0, 1}, seed).tokens[0].front(), 2);
  }
}

}  // namespace
}  // namespace coca::eval
