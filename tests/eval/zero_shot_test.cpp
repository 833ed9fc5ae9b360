#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "coca/eval/retrieval.h"
#include "coca/eval/zero_shot.h"
#include "test_utils.h"

namespace coca::eval {
namespace {

torch::Tensor rows(std::vector<std::vector<float>> v) {
  std::vector<torch::Tensor> out;
  for (auto& r : v) out.push_back(torch::tensor(r));
  return torch::nn::functional::normalize(torch::stack(out),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

TEST(ZeroShotTest, ClassEmbeddingsAverageNormalisedPromptsAndRenormalise) {
  std::vector<std::vector<std::string>> seen;
  const TextEncoder encode = [&](const std::vector<std::string>& texts) {
    seen.push_back(texts);
    std::vector<std::vector<float>> v;
    for (const auto& t : texts) {
      // Unnormalised on purpose: class_embeddings must normalise each prompt first.
      if (t == "a cat") v.push_back({3, 0, 0});
      else if (t == "the cat") v.push_back({0, 5, 0});
      else if (t == "a dog") v.push_back({0, 0, 2});
      else if (t == "the dog") v.push_back({0, 0, 7});
      else ADD_FAILURE() << "unexpected prompt " << t;
    }
    std::vector<torch::Tensor> out;
    for (auto& r : v) out.push_back(torch::tensor(r));
    return torch::stack(out);
  };
  const auto emb = class_embeddings({{"cat"}, {"dog"}}, {"a {}", "the {}"}, encode, 3);
  EXPECT_EQ(seen.size(), 2u);  // 4 prompts in batches of 3
  const float h = 1.0f / std::sqrt(2.0f);
  EXPECT_TENSOR_NEAR(emb, torch::tensor({{h, h, 0.0f}, {0.0f, 0.0f, 1.0f}}), 1e-6);
  EXPECT_THROW(class_embeddings({{"cat"}}, {"no placeholder"}, encode), std::invalid_argument);
}

TEST(ZeroShotTest, AccuracyTopKAndPerClass) {
  const auto classes = rows({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}});
  const auto images = rows({{1, 0, 0}, {0, 1, 0}, {0.1f, 0, 0.9f}, {0.9f, 0.5f, 0}});
  const auto labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto r = zero_shot_accuracy(images, classes, labels);
  EXPECT_DOUBLE_EQ(r.top1, 0.75);   // the last image is closer to class 0
  EXPECT_DOUBLE_EQ(r.top5, 1.0);    // only 3 classes: top-5 = top-3
  ASSERT_EQ(r.per_class_top1.size(), 3u);
  EXPECT_DOUBLE_EQ(r.per_class_top1[0], 1.0);
  EXPECT_DOUBLE_EQ(r.per_class_top1[1], 0.5);
  EXPECT_DOUBLE_EQ(r.per_class_top1[2], 1.0);
  EXPECT_DOUBLE_EQ(r.mean_per_class_top1, 2.5 / 3);
}

TEST(RetrievalTest, RecallAtKCountsEveryCaptionOfAnImage) {
  // Two images, three captions: captions 0 and 1 belong to image 0, caption 2 to image 1.
  const auto images = rows({{1, 0}, {0, 1}});
  const auto texts = rows({{0.2f, 1}, {1, 0.1f}, {1, 0.3f}});
  const auto owner = torch::tensor({0, 0, 1}, torch::kLong);
  const auto r = retrieval_recall(images, texts, owner);
  // image 0: ranking by x: caption 1 (0.995), caption 2 (0.958), caption 0 (0.196): its
  // best correct caption is first -> hit at 1. image 1: ranking by y: caption 0 (0.981),
  // caption 2 (0.287), caption 1 (0.0995): its caption is second -> miss at 1, hit at 5.
  EXPECT_DOUBLE_EQ(r.image_to_text[0], 0.5);
  EXPECT_DOUBLE_EQ(r.image_to_text[1], 1.0);
  EXPECT_DOUBLE_EQ(r.image_to_text[2], 1.0);
  // caption 0 -> image 1 first (wrong); caption 1 -> image 0 (right); caption 2 -> image 0
  // first (wrong).
  EXPECT_DOUBLE_EQ(r.text_to_image[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.text_to_image[1], 1.0);
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.texts, 3);
}

TEST(RetrievalTest, IdenticalTextsAreOneQueryWithSeveralRightAnswers) {
  // Images 0 and 1 are both captioned "a red circle" (texts 0 and 1, the same string, so
  // the same embedding); image 2 is "a blue square" (text 2).
  const auto images = rows({{1, 0}, {0.8f, 0.6f}, {0, 1}});
  const auto texts = rows({{1, 0.1f}, {1, 0.1f}, {0.1f, 1}});
  const auto owner = torch::tensor({0, 1, 2}, torch::kLong);
  // Pairs only: text 1 ranks image 0 above its own image 1 -> t2i R@1 2/3.
  const auto pairs = retrieval_recall(images, texts, owner);
  EXPECT_DOUBLE_EQ(pairs.text_to_image[0], 2.0 / 3);
  // Grouped: image 0 is a right answer for text 1 as well -> every text hits at 1.
  const auto groups = identical_text_groups({"a red circle", "a red circle", "a blue square"});
  EXPECT_TRUE(groups.equal(torch::tensor({0, 0, 1}, torch::kLong)));
  const auto grouped = retrieval_recall(images, texts, owner, groups);
  EXPECT_DOUBLE_EQ(grouped.text_to_image[0], 1.0);
  EXPECT_DOUBLE_EQ(grouped.image_to_text[0], 1.0);
  // A group only adds right answers; it does not forgive a wrong one. Move image 1 onto
  // "a blue square": its best text is text 2 (cos 1.0), not in its group -> i2t miss; and
  // text 2 now ranks image 1 (1.0) above its own image 2 (0.995) -> t2i miss.
  const auto moved = rows({{1, 0}, {0.1f, 1}, {0, 1}});
  const auto m = retrieval_recall(moved, texts, owner, groups);
  EXPECT_DOUBLE_EQ(m.image_to_text[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.text_to_image[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.text_to_image[1], 1.0);
}

}  // namespace
}  // namespace coca::eval
