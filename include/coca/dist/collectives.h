// Collectives on a coca::dist::Context (all no-ops in a single-process context), the
// differentiable all-gather used by the contrastive loss (CoCa arXiv 2205.01917 §3.2:
// the contrastive loss is computed over the global batch), and parameter broadcast /
// consistency checks. Every call blocks until the collective finished; a rank that died
// or stopped participating makes the others throw within dist.timeout_s with a message
// naming the operation and this rank.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>

#include "coca/dist/context.h"

namespace coca::dist {

/// Sums `tensor` over ranks in place, then divides by world_size.
void all_reduce_mean_(const Context& ctx, torch::Tensor& tensor);
/// Sums `tensor` over ranks in place.
void all_reduce_sum_(const Context& ctx, torch::Tensor& tensor);
/// Overwrites `tensor` with rank `root`'s value on every rank.
void broadcast_(const Context& ctx, torch::Tensor& tensor, int root = 0);
/// Returns when every rank reached it.
void barrier(const Context& ctx);
/// Concatenates every rank's `local` along dim 0 (no autograd): [B, ...] -> [W*B, ...].
/// All ranks must pass the same shape.
torch::Tensor all_gather(const Context& ctx, const torch::Tensor& local);

/// local: [B, E] -> [W*B, E], rows of rank r at [r*B, (r+1)*B), differentiable.
/// Backward sums the incoming gradient [W*B, E] over ranks and returns this rank's
/// rows, so with a loss that every rank computes on the full gathered batch (and
/// gradients averaged over ranks by GradSync) the parameter gradient equals the
/// single-process gradient of the concatenated batch. There is no 1/W shrinking:
/// open_clip's defaults (gather_with_grad=False, local_loss=False) let only the local
/// rows carry gradient, which after DDP's averaging scales the contrastive gradient by
/// 1/W relative to a single process with the same global batch.
/// Single-process context: returns `local` unchanged.
torch::Tensor all_gather_with_grad(const Context& ctx, const torch::Tensor& local);

/// Copies rank 0's parameters and buffers into every rank's `module`.
void broadcast_parameters(torch::nn::Module& module, const Context& ctx);

/// Collective. Replaces every floating-point buffer of `module` (BatchNorm running
/// statistics) by its mean over ranks, so ranks that normalised different batches keep
/// one model. Integer buffers (num_batches_tracked) advance alike on every rank.
void average_buffers(torch::nn::Module& module, const Context& ctx);

/// Throws std::runtime_error naming the first parameter (or buffer) whose value differs
/// from rank 0's, and the rank that differs. Compares exactly (bitwise equal values).
void check_identical_parameters(const torch::nn::Module& module, const Context& ctx);

}  // namespace coca::dist
