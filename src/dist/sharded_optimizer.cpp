#include "coca/dist/sharded_optimizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "coca/dist/collectives.h"

namespace coca::dist {

std::vector<int> partition_by_numel(const std::vector<torch::Tensor>& params, int world_size) {
  if (world_size < 1) throw std::invalid_argument("partition_by_numel: world_size must be >= 1");
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  std::vector<int> owner(params.size(), 0);
  if (total == 0) return owner;
  int64_t before = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel();
    // Twice the midpoint keeps the arithmetic integral: mid = before + n/2.
    const int64_t mid2 = 2 * before + n;
    const int64_t r = (mid2 * world_size) / (2 * total);
    owner[i] = static_cast<int>(std::min<int64_t>(r, world_size - 1));
    before += n;
  }
  return owner;
}

ShardedOptimizer::ShardedOptimizer(std::vector<torch::Tensor> params, const OptimizerFactory& make,
                                   const Context& ctx)
    : params_(std::move(params)), ctx_(ctx) {
  owner_ = partition_by_numel(params_, ctx_.world_size);
  std::vector<torch::Tensor> mine;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (owner_[i] == ctx_.rank) {
      local_.push_back(i);
      mine.push_back(params_[i]);
    }
  }
  inner_ = make(std::move(mine));
  if (!inner_) throw std::invalid_argument("ShardedOptimizer: the optimizer factory returned null");
}

void ShardedOptimizer::step() {
  inner_->step();
  if (!ctx_.distributed()) return;
  torch::NoGradGuard no_grad;
  // One flat broadcast per (owner, dtype, device) run; all ranks walk the same order.
  size_t i = 0;
  while (i < params_.size()) {
    size_t j = i + 1;
    while (j < params_.size() && owner_[j] == owner_[i] &&
           params_[j].scalar_type() == params_[i].scalar_type() &&
           params_[j].device() == params_[i].device()) {
      ++j;
    }
    const int root = owner_[i];
    std::vector<torch::Tensor> flat_parts;
    int64_t n = 0;
    for (size_t k = i; k < j; ++k) n += params_[k].numel();
    torch::Tensor flat;
    if (root == ctx_.rank) {
      for (size_t k = i; k < j; ++k) flat_parts.push_back(params_[k].detach().reshape({-1}));
      flat = torch::cat(flat_parts);
    } else {
      flat = torch::empty({n}, params_[i].options().requires_grad(false));
    }
    broadcast_(ctx_, flat, root);
    if (root != ctx_.rank) {
      int64_t off = 0;
      for (size_t k = i; k < j; ++k) {
        const int64_t m = params_[k].numel();
        params_[k].detach().copy_(flat.narrow(0, off, m).view(params_[k].sizes()));
        off += m;
      }
    }
    i = j;
  }
}

void ShardedOptimizer::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().reset();
  }
}

void ShardedOptimizer::save(torch::serialize::OutputArchive& archive) const {
  archive.write("zero_rank", torch::tensor(static_cast<int64_t>(ctx_.rank)));
  archive.write("zero_world_size", torch::tensor(static_cast<int64_t>(ctx_.world_size)));
  std::vector<int64_t> idx(local_.begin(), local_.end());
  archive.write("zero_local_indices", torch::tensor(idx, torch::kLong));
  torch::serialize::OutputArchive inner;
  inner_->save(inner);
  archive.write("optimizer", inner);
}

void ShardedOptimizer::load(torch::serialize::InputArchive& archive) {
  torch::Tensor rank, world, idx;
  archive.read("zero_rank", rank);
  archive.read("zero_world_size", world);
  archive.read("zero_local_indices", idx);
  if (rank.item<int64_t>() != ctx_.rank || world.item<int64_t>() != ctx_.world_size) {
    throw std::runtime_error("ShardedOptimizer: this optimizer shard was saved by rank " +
                             std::to_string(rank.item<int64_t>()) + " of " +
                             std::to_string(world.item<int64_t>()) +
                             " and cannot be loaded by rank " + std::to_string(ctx_.rank) + " of " +
                             std::to_string(ctx_.world_size) +
                             " (ZeRO-1 state is per rank: resume with the same world size)");
  }
  std::vector<int64_t> want(local_.begin(), local_.end());
  const torch::Tensor got = idx.to(torch::kLong).contiguous();
  const std::vector<int64_t> saved(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + got.numel());
  if (saved != want) {
    throw std::runtime_error("ShardedOptimizer: the saved shard of rank " +
                             std::to_string(ctx_.rank) + " owns " + std::to_string(saved.size()) +
                             " parameters, this model assigns " + std::to_string(want.size()) +
                             " different ones (the parameter list changed)");
  }
  torch::serialize::InputArchive inner;
  archive.read("optimizer", inner);
  inner_->load(inner);
}

}  // namespace coca::dist
