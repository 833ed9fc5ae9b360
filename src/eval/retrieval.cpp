#include "coca/eval/retrieval.h"

#include <torch/torch.h>

#include <unordered_map>

namespace coca::eval {
namespace {

constexpr int64_t kBlock = 1024;
constexpr std::array<int64_t, 3> kRanks = {1, 5, 10};

}  // namespace

RetrievalResult retrieval_recall(const torch::Tensor& image_features,
                                 const torch::Tensor& text_features,
                                 const torch::Tensor& text_image,
                                 const torch::Tensor& text_group) {
  TORCH_CHECK(image_features.dim() == 2 && text_features.dim() == 2 &&
                  image_features.size(1) == text_features.size(1),
              "retrieval_recall: expected image_features [I, E] and text_features [T, E], got ",
              image_features.sizes(), " and ", text_features.sizes());
  TORCH_CHECK(text_image.dim() == 1 && text_image.size(0) == text_features.size(0),
              "retrieval_recall: expected text_image [T], got ", text_image.sizes());
  TORCH_CHECK(!text_group.defined() || (text_group.dim() == 1 &&
                                        text_group.size(0) == text_features.size(0)),
              "retrieval_recall: expected text_group [T], got ", text_group.sizes());
  torch::NoGradGuard no_grad;
  const auto img = image_features.to(torch::kFloat);
  const auto txt = text_features.to(torch::kFloat);
  const auto owner = text_image.to(torch::kLong).to(img.device());
  const int64_t I = img.size(0), T = txt.size(0);
  RetrievalResult r;
  r.images = I;
  r.texts = T;
  if (I == 0 || T == 0) return r;
  const auto group = text_group.defined() ? text_group.to(torch::kLong).to(img.device())
                                           : torch::arange(T, owner.options());
  const int64_t G = group.max().item<int64_t>() + 1;
  // has[i, g]: image i has a caption in group g; both directions' correct sets come from it.
  auto has = torch::zeros({I, G}, owner.options().dtype(torch::kBool));
  has.index_put_({owner, group}, true);
  // The rank of the best-ranked correct item: how many items score strictly above it.
  const auto rank_of_best = [](const torch::Tensor& sims, const torch::Tensor& correct) {
    const auto best =
        sims.masked_fill(correct.logical_not(), -std::numeric_limits<float>::infinity()).amax(1);
    return sims.gt(best.unsqueeze(1)).sum(1);
  };
  std::array<int64_t, 3> i2t{}, t2i{};
  for (int64_t b = 0; b < I; b += kBlock) {  // image -> text
    const int64_t e = std::min(I, b + kBlock);
    const auto rank = rank_of_best(img.slice(0, b, e).matmul(txt.t()),   // [bi, T]
                                   has.slice(0, b, e).index_select(1, group));
    for (size_t k = 0; k < kRanks.size(); ++k) i2t[k] += rank.lt(kRanks[k]).sum().item<int64_t>();
  }
  for (int64_t b = 0; b < T; b += kBlock) {  // text -> image
    const int64_t e = std::min(T, b + kBlock);
    const auto rank = rank_of_best(txt.slice(0, b, e).matmul(img.t()),   // [bt, I]
                                   has.index_select(1, group.slice(0, b, e)).t());
    for (size_t k = 0; k < kRanks.size(); ++k) t2i[k] += rank.lt(kRanks[k]).sum().item<int64_t>();
  }
  for (size_t k = 0; k < kRanks.size(); ++k) {
    r.image_to_text[k] = static_cast<double>(i2t[k]) / I;
    r.text_to_image[k] = static_cast<double>(t2i[k]) / T;
  }
  return r;
}

torch::Tensor identical_text_groups(const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int64_t> ids;
  std::vector<int64_t> group;
  group.reserve(texts.size());
  for (const auto& t : texts) group.push_back(ids.emplace(t, ids.size()).first->second);
  return torch::tensor(group, torch::kLong);
}

}  // namespace coca::eval
