#include <gtest/gtest.h>

#include <cmath>

#include "coca/eval/caption_metrics.h"

namespace coca::eval {
namespace {

TEST(CaptionMetricsTest, TokenizesLikeTheCocoEvaluation) {
  EXPECT_EQ(caption_tokens("A man's Dog, running!  (fast)"),
            (std::vector<std::string>{"a", "man", "'s", "dog", "running", "fast"}));
  EXPECT_EQ(caption_tokens(" ... "), std::vector<std::string>{});
}

TEST(CaptionMetricsTest, BleuMatchesHandComputedPrecisions) {
  // candidate: the cat sat on the mat / reference: the cat is on the mat
  // unigram matches 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3; equal lengths: BP = 1.
  const auto s = caption_scores({"the cat sat on the mat"}, {{"the cat is on the mat"}});
  EXPECT_NEAR(s.bleu[0], 5.0 / 6.0, 1e-9);
  EXPECT_NEAR(s.bleu[1], std::sqrt(5.0 / 6.0 * 3.0 / 5.0), 1e-9);
  EXPECT_NEAR(s.bleu[2], std::cbrt(5.0 / 6.0 * 3.0 / 5.0 * 1.0 / 4.0), 1e-9);
  EXPECT_LT(s.bleu[3], 1e-3);
}

TEST(CaptionMetricsTest, BleuBrevityPenaltyUsesTheClosestReference) {
  // candidate 3 tokens, references of 4 and 7 tokens: r = 4, BP = exp(1 - 4/3).
  const auto s = caption_scores({"a red circle"}, {{"a big red circle", "there is a red circle here ok"}});
  // unigram precision 1 (each token is in a reference), bigram "a red" and "red circle" both
  // occur in the second reference: 2/2; trigram "a red circle" occurs too: 1/1.
  const double bp = std::exp(1.0 - 4.0 / 3.0);
  EXPECT_NEAR(s.bleu[0], bp, 1e-9);
  EXPECT_NEAR(s.bleu[1], bp, 1e-9);
  EXPECT_NEAR(s.bleu[2], bp, 1e-9);
}

TEST(CaptionMetricsTest, CiderDMatchesHandComputedValues) {
  // Two images. Image B is a perfect match: unigram and bigram cosines are 1, no tri-
  // or 4-grams, so CIDEr-D = (1 + 1 + 0 + 0) / 4 * 10 = 5.
  // Image A: "a b c" vs "a b": unigram cosine 2/sqrt(6), bigram 1/sqrt(2), trigram 0
  // (reference has none); length (bigram count) differs by 1: penalty exp(-1/72).
  const auto s = caption_scores({"a b c", "d e"}, {{"a b"}, {"d e"}});
  ASSERT_EQ(s.cider_per_image.size(), 2u);
  const double a = (2.0 / std::sqrt(6.0) + 1.0 / std::sqrt(2.0)) * std::exp(-1.0 / 72.0) / 4 * 10;
  EXPECT_NEAR(s.cider_per_image[0], a, 1e-9);
  EXPECT_NEAR(s.cider_per_image[1], 5.0, 1e-9);
  EXPECT_NEAR(s.cider, (a + 5.0) / 2, 1e-9);
}

TEST(CaptionMetricsTest, CiderDAveragesOverReferencesAndIgnoresCase) {
  // The candidate equals one of two references: that reference scores 5 (as above), the
  // other shares nothing: the image scores (5 + 0) / 2.
  const auto s = caption_scores({"A B", "x y"}, {{"a b", "p q"}, {"x y"}});
  EXPECT_NEAR(s.cider_per_image[0], 2.5, 1e-9);
  EXPECT_NEAR(s.cider_per_image[1], 5.0, 1e-9);
}

TEST(CaptionMetricsTest, RejectsMismatchedInputs) {
  EXPECT_THROW(caption_scores({"a"}, {}), std::invalid_argument);
  EXPECT_THROW(caption_scores({"a"}, {{}}), std::invalid_argument);
}

}  // namespace
}  // namespace coca::eval
