// Activation checkpointing for LibTorch C++ (which has no torch.utils.checkpoint): the
// forward runs without building a graph and keeps only its inputs; backward reruns it
// under grad mode and back-propagates through the recomputed graph (the reentrant
// scheme of torch.utils.checkpoint). Parameter gradients are accumulated into .grad by
// that inner backward, so use it with loss.backward(), not torch::autograd::grad.
// The wrapped function must be deterministic (our blocks have no dropout).
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace coca::model::detail {

using CheckpointFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

/// Returns fn(inputs) without storing intermediate activations. Undefined inputs are
/// passed through as undefined.
torch::Tensor checkpoint(CheckpointFn fn, const std::vector<torch::Tensor>& inputs);

}  // namespace coca::model::detail
