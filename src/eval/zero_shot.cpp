#include "coca/eval/zero_shot.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace coca::eval {

torch::Tensor class_embeddings(const std::vector<std::vector<std::string>>& class_names,
                               const std::vector<std::string>& templates,
                               const TextEncoder& encode, int64_t batch_size) {
  if (class_names.empty()) throw std::invalid_argument("class_embeddings: no classes");
  if (templates.empty()) throw std::invalid_argument("class_embeddings: no templates");
  std::vector<std::string> prompts;
  std::vector<int64_t> owner;
  for (size_t c = 0; c < class_names.size(); ++c) {
    if (class_names[c].empty()) {
      throw std::invalid_argument("class_embeddings: class " + std::to_string(c) + " has no name");
    }
    for (const auto& name : class_names[c]) {
      for (const auto& t : templates) {
        std::string p = t;
        const auto pos = p.find("{}");
        if (pos == std::string::npos) {
          throw std::invalid_argument("class_embeddings: template without {}: '" + t + "'");
        }
        p.replace(pos, 2, name);
        prompts.push_back(std::move(p));
        owner.push_back(static_cast<int64_t>(c));
      }
    }
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> chunks;
  for (size_t begin = 0; begin < prompts.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(prompts.size(), begin + static_cast<size_t>(batch_size));
    chunks.push_back(encode({prompts.begin() + begin, prompts.begin() + end}).to(torch::kFloat));
  }
  const auto emb = torch::nn::functional::normalize(
      torch::cat(chunks), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto index = torch::tensor(owner, torch::kLong).to(emb.device());
  auto sums = torch::zeros({static_cast<int64_t>(class_names.size()), emb.size(1)}, emb.options());
  sums.index_add_(0, index, emb);
  return torch::nn::functional::normalize(sums, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

ZeroShotResult zero_shot_accuracy(const torch::Tensor& image_features,
                                  const torch::Tensor& class_embeddings,
                                  const torch::Tensor& labels) {
  TORCH_CHECK(image_features.dim() == 2 && class_embeddings.dim() == 2 &&
                  image_features.size(1) == class_embeddings.size(1),
              "zero_shot_accuracy: expected image_features [N, E] and class_embeddings [C, E], got ",
              image_features.sizes(), " and ", class_embeddings.sizes());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == image_features.size(0),
              "zero_shot_accuracy: expected labels [N], got ", labels.sizes());
  torch::NoGradGuard no_grad;
  const int64_t n = image_features.size(0);
  const int64_t classes = class_embeddings.size(0);
  const auto scores = image_features.to(torch::kFloat).matmul(class_embeddings.to(torch::kFloat).t());
  const auto k = std::min<int64_t>(5, classes);
  const auto topk = std::get<1>(scores.topk(k, 1)).cpu();
  const auto y = labels.to(torch::kLong).cpu();
  const auto hit = topk.eq(y.unsqueeze(1));
  const auto hit1 = hit.select(1, 0);
  ZeroShotResult r;
  r.images = n;
  if (n == 0) return r;
  r.top1 = hit1.to(torch::kDouble).mean().item<double>();
  r.top5 = hit.any(1).to(torch::kDouble).mean().item<double>();
  r.per_class_top1.assign(static_cast<size_t>(classes), std::numeric_limits<double>::quiet_NaN());
  double sum = 0;
  int64_t counted = 0;
  for (int64_t c = 0; c < classes; ++c) {
    const auto mask = y.eq(c);
    const int64_t count = mask.sum().item<int64_t>();
    if (count == 0) continue;
    const double acc = hit1.masked_select(mask).to(torch::kDouble).mean().item<double>();
    r.per_class_top1[static_cast<size_t>(c)] = acc;
    sum += acc;
    ++counted;
  }
  r.mean_per_class_top1 = counted > 0 ? sum / counted : 0.0;
  return r;
}

}  // namespace coca::eval
