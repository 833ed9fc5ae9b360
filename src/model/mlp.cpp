#include "coca/model/mlp.h"

#include <torch/torch.h>

namespace coca::model {

MlpImpl::MlpImpl(int64_t width_, int64_t hidden_) : width(width_), hidden(hidden_) { reset(); }

void MlpImpl::reset() {
  c_fc = register_module("c_fc", torch::nn::Linear(width, hidden));
  c_proj = register_module("c_proj", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return c_proj->forward(torch::gelu(c_fc->forward(x)));
}

}  // namespace coca::model
