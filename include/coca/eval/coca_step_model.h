// eval::StepModel over a CoCa model (caption generation, CoCa arXiv 2205.01917 §3.2,
// §4.3): the image is encoded once; each step either reruns the text tower and the
// multimodal decoder on the whole prefix (uncached) or feeds only the newest token
// through the key/value caches (CoCaImpl::decode_step). Both give the same logits.
//
//   eval::CoCaStepModel step(model, images, /*kv_cache=*/true);
//   auto result = eval::generate(step, images.size(0), cfg, {tok.bos_id(), tok.eos_id()});
#pragma once

#include <torch/types.h>

#include "coca/eval/generate.h"
#include "coca/model/coca.h"

namespace coca::eval {

class CoCaStepModel : public StepModel {
 public:
  /// images: [N, 3, H, W] preprocessed (the model's image size). The model should be in
  /// eval mode; generate() runs without gradients.
  CoCaStepModel(model::CoCa& model, const torch::Tensor& images, bool kv_cache);
  /// The same from already encoded image tokens [N, S, W].
  static CoCaStepModel from_image_tokens(model::CoCa& model, const torch::Tensor& image_tokens,
                                         bool kv_cache);

  /// tokens [N, L] -> logits [N, V] of position L. Cached: L must be the cache length + 1
  /// (generate() calls it with L = 1, 2, ...); only the last column is fed.
  torch::Tensor next_logits(const torch::Tensor& tokens) override;
  void select(const torch::Tensor& index) override;

  bool kv_cache() const { return kv_cache_; }
  /// Only ids < n may be generated (the model's vocabulary can be larger than its
  /// tokenizer's): logits of ids >= n become -inf. 0 = no limit.
  void limit_vocab(int64_t n) { vocab_limit_ = n; }

 private:
  CoCaStepModel(model::CoCa& model, bool kv_cache) : model_(model), kv_cache_(kv_cache) {}
  void start(const torch::Tensor& image_tokens);
  torch::Tensor compute_logits(const torch::Tensor& tokens);

  model::CoCa model_;
  bool kv_cache_;
  int64_t vocab_limit_ = 0;
  torch::Tensor image_tokens_;  ///< uncached: [N, S, W]
  model::DecodeCache cache_;    ///< cached
};

}  // namespace coca::eval
