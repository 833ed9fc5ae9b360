#include "coca/dist/collectives.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/detail/collective_error.h"

namespace coca::dist {
namespace {

using detail::wait_or_throw;

// Autograd function for all_gather_with_grad. The process group travels in the
// autograd context as a capsule (c10d groups are torch::CustomClassHolder).
struct AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* actx, const torch::Tensor& local,
                               const Context* ctx) {
    actx->saved_data["pg"] = c10::IValue::make_capsule(ctx->pg);
    actx->saved_data["rank"] = static_cast<int64_t>(ctx->rank);
    actx->saved_data["world"] = static_cast<int64_t>(ctx->world_size);
    actx->saved_data["timeout_ms"] = static_cast<int64_t>(ctx->timeout.count());
    actx->saved_data["rows"] = local.size(0);
    actx->saved_data["backend"] = ctx->backend;
    return all_gather(*ctx, local);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* actx,
                                                 torch::autograd::variable_list grads) {
    Context ctx;
    ctx.pg = c10::static_intrusive_pointer_cast<ProcessGroup>(actx->saved_data["pg"].toCapsule());
    ctx.rank = static_cast<int>(actx->saved_data["rank"].toInt());
    ctx.world_size = static_cast<int>(actx->saved_data["world"].toInt());
    ctx.timeout = std::chrono::milliseconds(actx->saved_data["timeout_ms"].toInt());
    ctx.backend = actx->saved_data["backend"].toStringRef();
    const int64_t rows = actx->saved_data["rows"].toInt();
    // Every rank's loss depends on every row of the gathered batch: the gradient of the
    // sum of the ranks' losses w.r.t. this rank's rows is the sum over ranks of their
    // incoming gradients, restricted to our rows.
    torch::Tensor g = grads[0].contiguous().clone();
    all_reduce_sum_(ctx, g);
    return {g.narrow(0, ctx.rank * rows, rows), torch::Tensor()};
  }
};

}  // namespace

void all_reduce_sum_(const Context& ctx, torch::Tensor& tensor) {
  if (!ctx.distributed()) return;
  TORCH_CHECK(tensor.is_contiguous(), "all_reduce: tensor must be contiguous, got strides ",
              tensor.strides());
  std::vector<torch::Tensor> ts{tensor};
  wait_or_throw(ctx, ctx.pg->allreduce(ts), "all_reduce");
}

void all_reduce_mean_(const Context& ctx, torch::Tensor& tensor) {
  if (!ctx.distributed()) return;
  all_reduce_sum_(ctx, tensor);
  tensor.div_(ctx.world_size);
}

void broadcast_(const Context& ctx, torch::Tensor& tensor, int root) {
  if (!ctx.distributed()) return;
  if (root < 0 || root >= ctx.world_size) {
    throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                " is not a rank of a world of " + std::to_string(ctx.world_size));
  }
  TORCH_CHECK(tensor.is_contiguous(), "broadcast: tensor must be contiguous");
  std::vector<torch::Tensor> ts{tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  wait_or_throw(ctx, ctx.pg->broadcast(ts, opts), "broadcast");
}

void barrier(const Context& ctx) {
  if (!ctx.distributed()) return;
  wait_or_throw(ctx, ctx.pg->barrier(), "barrier");
}

torch::Tensor all_gather(const Context& ctx, const torch::Tensor& local) {
  if (!ctx.distributed()) return local;
  torch::NoGradGuard no_grad;
  torch::Tensor input = local.detach().contiguous();
  std::vector<torch::Tensor> parts;
  parts.reserve(ctx.world_size);
  for (int r = 0; r < ctx.world_size; ++r) parts.push_back(torch::empty_like(input));
  std::vector<std::vector<torch::Tensor>> outputs{parts};
  std::vector<torch::Tensor> inputs{input};
  wait_or_throw(ctx, ctx.pg->allgather(outputs, inputs), "all_gather");
  return torch::cat(outputs[0], 0);
}

torch::Tensor all_gather_with_grad(const Context& ctx, const torch::Tensor& local) {
  if (!ctx.distributed()) return local;
  TORCH_CHECK(local.dim() >= 1, "all_gather_with_grad: expected [B, ...], got ", local.sizes());
  return AllGatherWithGrad::apply(local, &ctx);
}

namespace {

/// Runs an in-place collective on t, through a contiguous copy where t is not contiguous.
template <class Collective>
void in_place(torch::Tensor t, const Collective& collective) {
  if (t.is_contiguous()) {
    collective(t);
  } else {
    torch::Tensor c = t.contiguous();
    collective(c);
    t.copy_(c);
  }
}

}  // namespace

void broadcast_parameters(torch::nn::Module& module, const Context& ctx) {
  if (!ctx.distributed()) return;
  torch::NoGradGuard no_grad;
  const auto sync = [&](torch::Tensor& t) { broadcast_(ctx, t, 0); };
  for (auto& p : module.parameters()) in_place(p, sync);
  for (auto& b : module.buffers()) in_place(b, sync);
}

void average_buffers(torch::nn::Module& module, const Context& ctx) {
  if (!ctx.distributed()) return;
  torch::NoGradGuard no_grad;
  const auto mean = [&](torch::Tensor& t) { all_reduce_mean_(ctx, t); };
  for (auto& b : module.buffers()) {
    if (b.is_floating_point()) in_place(b, mean);
  }
}

void check_identical_parameters(const torch::nn::Module& module, const Context& ctx) {
  if (!ctx.distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& kv : module.named_parameters()) named.emplace_back(kv.key(), kv.value());
  for (const auto& kv : module.named_buffers()) named.emplace_back(kv.key(), kv.value());
  // One flag per tensor: 1 where this rank differs from rank 0. A max-reduce of
  // (flag * (rank + 1)) would need ReduceOp::MAX; a sum of per-rank one-hot rows gives
  // the same and names every differing rank.
  const int64_t n = static_cast<int64_t>(named.size());
  torch::Tensor differs = torch::zeros({ctx.world_size, std::max<int64_t>(n, 1)}, torch::kFloat);
  std::vector<float> mine_differs(static_cast<size_t>(std::max<int64_t>(n, 1)), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor mine = named[i].second.detach().contiguous().clone();
    torch::Tensor root = mine.clone();
    broadcast_(ctx, root, 0);
    const bool same =
        mine.sizes() == root.sizes() &&
        torch::equal(mine.view(-1).view(torch::kByte), root.view(-1).view(torch::kByte));
    if (!same) mine_differs[static_cast<size_t>(i)] = 1.0f;
  }
  differs[ctx.rank].copy_(torch::tensor(mine_differs, torch::kFloat));
  differs = differs.to(ctx.device);  // NCCL reduces device tensors only
  all_reduce_sum_(ctx, differs);
  differs = differs.cpu();
  for (int64_t i = 0; i < n; ++i) {
    for (int r = 1; r < ctx.world_size; ++r) {
      if (differs[r][i].item<float>() > 0.0f) {
        throw std::runtime_error("dist.check_params: parameter '" + named[i].first + "' on rank " +
                                 std::to_string(r) +
                                 " differs from rank 0 (broadcast_parameters at start, or check "
                                 "the seed and the initialisation)");
      }
    }
  }
}

}  // namespace coca::dist
