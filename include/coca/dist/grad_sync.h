// Data-parallel gradient averaging without a C++ DistributedDataParallel: gradients are
// copied into flat buckets (~dist.bucket_mb each) by autograd hooks as backward produces
// them and each bucket's all-reduce is launched asynchronously as soon as it is full, so
// communication overlaps the rest of backward. finish() waits and writes the averaged
// gradients back into param.grad().
#pragma once

#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "coca/dist/context.h"

namespace coca::dist {

/// Usage, with gradient accumulation over k micro-batches:
///   GradSync sync(ctx, model->named_parameters(), cfg.dist.bucket_mb);
///   for (int i = 0; i < k; ++i) {
///     sync.set_sync(i == k - 1);   // local accumulation until the last micro-batch
///     (loss_i / k).backward();
///   }
///   sync.finish();                 // param.grad() = mean over ranks of the summed grads
///   optimizer.step(); optimizer.zero_grad();
/// Buckets hold parameters in reverse registration order (the order backward produces
/// their gradients) and are launched strictly in bucket order, so every rank issues the
/// same collectives in the same order. A parameter that gets no gradient in the synced
/// backward does not block others: finish() fills its slot from its accumulated
/// param.grad() (or zeros) and reduces the remaining buckets then. A parameter without a
/// gradient on every rank keeps an undefined grad (the optimizer skips it, as it would
/// in one process). Single-process context: no hooks, finish() does nothing.
class GradSync {
 public:
  GradSync(const Context& ctx, std::vector<std::pair<std::string, torch::Tensor>> named_params,
           double bucket_mb);
  /// Same, from the pairs of torch::nn::Module::named_parameters().
  GradSync(const Context& ctx, const torch::OrderedDict<std::string, torch::Tensor>& named_params,
           double bucket_mb);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  /// false: the next backward only accumulates into param.grad() locally (no traffic).
  /// true (default): the next backward reduces the total accumulated gradient.
  void set_sync(bool enabled);
  bool sync_enabled() const { return sync_; }

  /// Waits for all bucket reductions (reducing the ones not launched during backward),
  /// divides by world size and writes param.grad(). Call once after the synced
  /// backward. Throws (naming the operation and rank) if a peer fails or times out.
  void finish();

  /// Number of buckets and, for tests/logs, the parameter names of bucket i.
  size_t num_buckets() const { return buckets_.size(); }
  std::vector<std::string> bucket_names(size_t i) const;

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket's flat buffer
    int64_t numel = 0;
    bool ready = false;  // gradient copied in during the current synced backward
    unsigned hook = 0;
  };
  struct Bucket {
    torch::Tensor flat;         // [sum of numel], dtype/device of its parameters
    std::vector<size_t> slots;  // indices into slots_
    size_t pending = 0;         // slots not ready yet
    c10::intrusive_ptr<c10d::Work> work;
  };

  void on_grad(size_t slot, const torch::Tensor& grad);
  void launch_ready_buckets_locked();
  void launch_locked(size_t bucket);
  void reset_round_locked();

  Context ctx_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool sync_ = true;
  std::mutex mutex_;
};

}  // namespace coca::dist
