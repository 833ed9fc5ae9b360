#include "coca/dist/grad_sync.h"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

#include "dist/detail/collective_error.h"

namespace coca::dist {

GradSync::GradSync(const Context& ctx,
                   const torch::OrderedDict<std::string, torch::Tensor>& named_params,
                   double bucket_mb)
    : GradSync(
          ctx,
          [&] {
            std::vector<std::pair<std::string, torch::Tensor>> v;
            for (const auto& kv : named_params) v.emplace_back(kv.key(), kv.value());
            return v;
          }(),
          bucket_mb) {}

GradSync::GradSync(const Context& ctx,
                   std::vector<std::pair<std::string, torch::Tensor>> named_params,
                   double bucket_mb)
    : ctx_(ctx) {
  if (!(bucket_mb > 0.0)) {
    throw std::invalid_argument("dist.bucket_mb must be > 0, got " + std::to_string(bucket_mb));
  }
  if (!ctx_.distributed()) return;
  const double cap_bytes = bucket_mb * 1024.0 * 1024.0;
  // Reverse registration order: backward produces the last layers' gradients first.
  std::reverse(named_params.begin(), named_params.end());
  int64_t bucket_bytes = 0;
  for (auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    Slot s;
    s.name = name;
    s.param = p;
    s.numel = p.numel();
    const int64_t bytes = s.numel * static_cast<int64_t>(p.element_size());
    bool new_bucket = buckets_.empty();
    if (!new_bucket) {
      const torch::Tensor& last = slots_[buckets_.back().slots.back()].param;
      new_bucket = static_cast<double>(bucket_bytes + bytes) > cap_bytes ||
                   last.scalar_type() != p.scalar_type() || last.device() != p.device();
    }
    if (new_bucket) {
      buckets_.emplace_back();
      bucket_bytes = 0;
    }
    Bucket& b = buckets_.back();
    s.bucket = buckets_.size() - 1;
    s.offset = bucket_bytes / static_cast<int64_t>(p.element_size());
    bucket_bytes += bytes;
    b.slots.push_back(slots_.size());
    slots_.push_back(std::move(s));
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (size_t i : b.slots) n += slots_[i].numel;
    const auto& p0 = slots_[b.slots.front()].param;
    b.flat = torch::zeros({n}, p0.options().requires_grad(false));
    b.pending = b.slots.size();
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    // A void hook observes the gradient without replacing it.
    slots_[i].hook =
        slots_[i].param.register_hook([this, i](const torch::Tensor& grad) { on_grad(i, grad); });
  }
}

GradSync::~GradSync() {
  for (auto& s : slots_) {
    try {
      s.param.remove_hook(s.hook);
    } catch (...) {
      // The parameter may already be gone; nothing to undo then.
    }
  }
  // Reductions still in flight reference our buffers: let them finish.
  for (auto& b : buckets_) {
    if (b.work) {
      try {
        b.work->wait();
      } catch (...) {
      }
    }
  }
}

void GradSync::set_sync(bool enabled) {
  std::lock_guard<std::mutex> lock(mutex_);
  sync_ = enabled;
}

std::vector<std::string> GradSync::bucket_names(size_t i) const {
  std::vector<std::string> names;
  for (size_t s : buckets_.at(i).slots) names.push_back(slots_[s].name);
  return names;
}

void GradSync::on_grad(size_t index, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!sync_) return;  // grads accumulate locally in param.grad()
  Slot& s = slots_[index];
  Bucket& b = buckets_[s.bucket];
  if (s.ready) {
    throw std::runtime_error("GradSync: parameter '" + s.name +
                             "' got a second gradient before finish(); call set_sync(false) "
                             "for all but the last backward of a step");
  }
  TORCH_CHECK(!grad.is_sparse(), "GradSync: sparse gradient for '", s.name, "' is not supported");
  torch::NoGradGuard no_grad;
  // The hook runs before AccumulateGrad: what this step reduces is the gradient of this
  // backward plus whatever earlier (unsynced) micro-batches accumulated.
  torch::Tensor slot = b.flat.narrow(0, s.offset, s.numel);
  slot.copy_(grad.reshape({-1}));
  const torch::Tensor& acc = s.param.grad();
  if (acc.defined()) slot.add_(acc.reshape({-1}));
  s.ready = true;
  if (--b.pending == 0) launch_ready_buckets_locked();
}

void GradSync::launch_locked(size_t bucket) {
  std::vector<torch::Tensor> ts{buckets_[bucket].flat};
  buckets_[bucket].work = ctx_.pg->allreduce(ts);
}

void GradSync::launch_ready_buckets_locked() {
  // Strictly in bucket order, so all ranks issue the same collective sequence even if
  // gradients arrive in a different order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch_locked(next_launch_);
    ++next_launch_;
  }
}

void GradSync::reset_round_locked() {
  for (auto& s : slots_) s.ready = false;
  for (auto& b : buckets_) {
    b.pending = b.slots.size();
    b.work.reset();
  }
  next_launch_ = 0;
}

void GradSync::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!ctx_.distributed() || buckets_.empty()) return;
  if (!sync_) {
    throw std::logic_error("GradSync::finish() called while sync is disabled (set_sync(false))");
  }
  torch::NoGradGuard no_grad;
  // Which parameters have a gradient on this rank; summed over ranks below so that a
  // parameter nobody computed a gradient for keeps an undefined grad.
  std::vector<float> used_local(slots_.size(), 0.0f);
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.ready) {
      used_local[i] = 1.0f;
      continue;
    }
    // No gradient in this backward: reduce what was accumulated before (or zeros).
    Bucket& b = buckets_[s.bucket];
    torch::Tensor slot = b.flat.narrow(0, s.offset, s.numel);
    const torch::Tensor& acc = s.param.grad();
    if (acc.defined()) {
      slot.copy_(acc.reshape({-1}));
      used_local[i] = 1.0f;
    } else {
      slot.zero_();
    }
    s.ready = true;
    --b.pending;
  }
  launch_ready_buckets_locked();
  // On the buckets' device: NCCL reduces device tensors only.
  torch::Tensor used = torch::tensor(used_local, torch::kFloat).to(buckets_.front().flat.device());
  std::vector<torch::Tensor> ts{used};
  auto used_work = ctx_.pg->allreduce(ts);
  try {
    for (auto& b : buckets_) detail::wait_or_throw(ctx_, b.work, "gradient all_reduce");
    detail::wait_or_throw(ctx_, used_work, "gradient all_reduce (used-parameter mask)");
  } catch (...) {
    reset_round_locked();
    throw;
  }
  const torch::Tensor used_cpu = used.cpu();
  auto used_acc = used_cpu.accessor<float, 1>();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (used_acc[static_cast<int64_t>(i)] == 0.0f) continue;
    Slot& s = slots_[i];
    torch::Tensor avg = buckets_[s.bucket].flat.narrow(0, s.offset, s.numel).view(s.param.sizes());
    torch::Tensor& g = s.param.mutable_grad();
    if (g.defined()) {
      g.copy_(avg).div_(ctx_.world_size);
    } else {
      g = avg.div(ctx_.world_size);
    }
  }
  reset_round_locked();
}

}  // namespace coca::dist
