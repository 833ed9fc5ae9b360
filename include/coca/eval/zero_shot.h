// Zero-shot classification (CLIP's protocol, used by CoCa arXiv 2205.01917 §4.2.1): each
// class name is put into every prompt template, the normalised text embeddings are
// averaged per class and renormalised; an image is assigned the class whose embedding is
// most similar to its own.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace coca::eval {

/// texts -> L2-normalised embeddings [N, E] (the model's text tower, batched by the caller).
using TextEncoder = std::function<torch::Tensor(const std::vector<std::string>&)>;

/// class_names[c] (one or more names per class; every name is used) x templates ("{}"
/// is replaced by the name) -> [C, E] class embeddings: mean of the normalised prompt
/// embeddings of the class, renormalised. Texts are encoded `batch_size` at a time.
torch::Tensor class_embeddings(const std::vector<std::vector<std::string>>& class_names,
                               const std::vector<std::string>& templates,
                               const TextEncoder& encode, int64_t batch_size = 256);

struct ZeroShotResult {
  double top1 = 0;                    ///< fraction of images whose best class is right
  double top5 = 0;                    ///< fraction with the right class among the best 5
  std::vector<double> per_class_top1; ///< top-1 per class (NaN for a class without images)
  double mean_per_class_top1 = 0;     ///< mean over classes that have images
  int64_t images = 0;
};

/// image_features [N, E] (normalised), class_embeddings [C, E], labels [N] int64 in [0, C).
ZeroShotResult zero_shot_accuracy(const torch::Tensor& image_features,
                                  const torch::Tensor& class_embeddings,
                                  const torch::Tensor& labels);

}  // namespace coca::eval
