#include "coca/eval/retrieval.h"

#include <torch/torch.h>

namespace coca::eval {
namespace {

constexpr int64_t kBlock = 1024;
constexpr std::array<int64_t, 3> kRanks = {1, 5, 10};

}  // namespace

RetrievalResult retrieval_recall(const torch::Tensor& image_features,
                                 const torch::Tensor& text_features,
                                 const torch::Tensor& text_image) {
  TORCH_CHECK(image_features.dim() == 2 && text_features.dim() == 2 &&
                  image_features.size(1) == text_features.size(1),
              "retrieval_recall: expected image_features [I, E] and text_features [T, E], got ",
              image_features.sizes(), " and ", text_features.sizes());
  TORCH_CHECK(text_image.dim() == 1 && text_image.size(0) == text_features.size(0),
              "retrieval_recall: expected text_image [T], got ", text_image.sizes());
  torch::NoGradGuard no_grad;
  const auto img = image_features.to(torch::kFloat);
  const auto txt = text_features.to(torch::kFloat);
  const auto owner = text_image.to(torch::kLong).to(img.device());
  const int64_t I = img.size(0), T = txt.size(0);
  RetrievalResult r;
  r.images = I;
  r.texts = T;
  if (I == 0 || T == 0) return r;
  std::array<int64_t, 3> i2t{}, t2i{};
  // Image -> text: the rank of the best-ranked correct caption of each image.
  for (int64_t b = 0; b < I; b += kBlock) {
    const int64_t e = std::min(I, b + kBlock);
    const auto sims = img.slice(0, b, e).matmul(txt.t());  // [bi, T]
    const auto ids = torch::arange(b, e, owner.options()).unsqueeze(1);
    const auto correct = owner.unsqueeze(0).eq(ids);  // [bi, T]
    const auto best_correct =
        sims.masked_fill(correct.logical_not(), -std::numeric_limits<float>::infinity()).amax(1);
    const auto rank = sims.gt(best_correct.unsqueeze(1)).sum(1);  // captions ranked above
    for (size_t k = 0; k < kRanks.size(); ++k) i2t[k] += rank.lt(kRanks[k]).sum().item<int64_t>();
  }
  // Text -> image: the rank of the caption's own image.
  for (int64_t b = 0; b < T; b += kBlock) {
    const int64_t e = std::min(T, b + kBlock);
    const auto sims = txt.slice(0, b, e).matmul(img.t());  // [bt, I]
    const auto own = sims.gather(1, owner.slice(0, b, e).unsqueeze(1));
    const auto rank = sims.gt(own).sum(1);
    for (size_t k = 0; k < kRanks.size(); ++k) t2i[k] += rank.lt(kRanks[k]).sum().item<int64_t>();
  }
  for (size_t k = 0; k < kRanks.size(); ++k) {
    r.image_to_text[k] = static_cast<double>(i2t[k]) / I;
    r.text_to_image[k] = static_cast<double>(t2i[k]) / T;
  }
  return r;
}

}  // namespace coca::eval
