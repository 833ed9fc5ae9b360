// ZeRO stage 1 (optimizer-state sharding, Rajbhandari et al., arXiv 1910.02054;
// dist.zero_stage: 1): each rank owns a contiguous run of whole parameter tensors
// (balanced by element count), keeps optimizer state only for those and steps only
// them; then each owner broadcasts its updated parameters. Gradients must already be
// averaged over ranks (GradSync), so the update equals the unsharded optimizer's.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <vector>

#include "coca/dist/context.h"

namespace coca::dist {

/// Builds the inner optimizer over a subset of the parameters, e.g.
///   [&](std::vector<torch::Tensor> p) {
///     return std::make_unique<torch::optim::Adam>(std::move(p), adam_options);
///   }
using OptimizerFactory =
    std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)>;

/// Owner rank of each parameter: contiguous runs of whole tensors, the split points
/// placed by cumulative element count (tensor i goes to the rank whose share contains
/// the midpoint of its elements). Ranks may own nothing when tensors < ranks.
std::vector<int> partition_by_numel(const std::vector<torch::Tensor>& params, int world_size);

class ShardedOptimizer {
 public:
  ShardedOptimizer(std::vector<torch::Tensor> params, const OptimizerFactory& make,
                   const Context& ctx);

  /// Steps the local shard, then broadcasts every shard from its owner (one broadcast
  /// of a flat buffer per owner and dtype). Collective: every rank must call it.
  void step();
  /// Sets every parameter's grad (not only the local shard's) to undefined.
  void zero_grad();

  /// The inner optimizer over this rank's parameters (drive its learning rate with an
  /// LR scheduler on every rank). Also exists, empty, on a rank that owns nothing.
  torch::optim::Optimizer& local_optimizer() { return *inner_; }
  /// Owner rank of params[i].
  const std::vector<int>& owners() const { return owner_; }
  /// Indices (into the constructor's params) of this rank's parameters.
  const std::vector<size_t>& local_indices() const { return local_; }

  /// Saves this rank's shard of optimizer state, with rank, world size and the owned
  /// parameter indices; each rank writes its own file.
  void save(torch::serialize::OutputArchive& archive) const;
  /// Loads a shard saved by the same rank of a job with the same world size and
  /// parameter layout; throws std::runtime_error naming what differs.
  void load(torch::serialize::InputArchive& archive);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<int> owner_;
  std::vector<size_t> local_;
  std::unique_ptr<torch::optim::Optimizer> inner_;
  Context ctx_;
};

}  // namespace coca::dist
