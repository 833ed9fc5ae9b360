// Image-text retrieval over a whole set (COCO/Flickr protocol, CoCa arXiv 2205.01917
// §4.2.1): every image against every caption; an image has several captions.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace coca::eval {

struct RetrievalResult {
  std::array<double, 3> image_to_text{};  ///< R@1, R@5, R@10: a correct caption in the top k
  std::array<double, 3> text_to_image{};  ///< R@1, R@5, R@10: the caption's image in the top k
  int64_t images = 0;
  int64_t texts = 0;
};

/// image_features [I, E], text_features [T, E] (both normalised), text_image [T] int64:
/// the image each caption belongs to. text_group [T] int64 (optional, undefined = every
/// caption its own group): captions in one group are the same text, so they are one query
/// with several correct answers: a text's correct images are all images with a caption in
/// its group, and an image's correct captions are all captions in its captions' groups.
/// Without it, a caption repeated for k images has k images tied for the one right answer
/// (COCO has next to no exact duplicates; synthetic or label-like captions have many).
/// Similarities are computed in blocks, so large sets need O(block x max(I, T)) memory.
RetrievalResult retrieval_recall(const torch::Tensor& image_features,
                                 const torch::Tensor& text_features,
                                 const torch::Tensor& text_image,
                                 const torch::Tensor& text_group = {});

/// Group ids [T] for retrieval_recall: texts equal as strings share an id.
torch::Tensor identical_text_groups(const std::vector<std::string>& texts);

}  // namespace coca::eval
