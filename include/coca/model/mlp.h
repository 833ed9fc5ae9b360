// The transformer MLP: c_fc -> exact (erf) GELU -> c_proj, named as open_clip's
// `mlp.c_fc` / `mlp.c_proj`.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

namespace coca::model {

/// Two-layer MLP with exact GELU. x: [*, D] -> [*, D].
class MlpImpl : public torch::nn::Cloneable<MlpImpl> {
 public:
  MlpImpl(int64_t width, int64_t hidden);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t width;
  int64_t hidden;
  torch::nn::Linear c_fc{nullptr};    ///< [hidden, D]
  torch::nn::Linear c_proj{nullptr};  ///< [D, hidden]
};
TORCH_MODULE(Mlp);

}  // namespace coca::model
