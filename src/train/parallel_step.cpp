#include "coca/train/parallel_step.h"

#include <ATen/ThreadLocalState.h>
#include <torch/torch.h>

#include <cmath>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "coca/common/compat.h"
#include "coca/common/runtime.h"

namespace coca::train {
namespace {

/// Runs fn(0..n-1) on n threads that carry the caller's thread-local state (grad mode,
/// dispatch settings) and `threads` intra-op threads each; rethrows the first error.
void run_on_threads(int64_t n, int64_t threads, const std::function<void(int64_t)>& fn) {
  const at::ThreadLocalState state;
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> workers;
  workers.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    workers.emplace_back([&, i] {
      try {
        at::ThreadLocalStateGuard guard(state);
        runtime::set_thread_local_intra_op_threads(threads);
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace

ShardedStepLoss sharded_forward_backward(model::CoCa& model, const torch::Tensor& images,
                                         const torch::Tensor& text, const CoCaLoss& loss,
                                         double caption_scale, const ShardedStepOptions& options) {
  const int64_t batch = images.size(0);
  TORCH_CHECK(options.shards >= 1 && options.shards <= batch, "sharded_forward_backward: ",
              options.shards, " shards for a batch of ", batch);
  TORCH_CHECK(text.size(0) == batch, "sharded_forward_backward: images ", images.sizes(),
              " and text ", text.sizes(), " differ in batch size");
  const int64_t n = options.shards;
  // Row blocks as even as possible: the first batch % n get one row more.
  std::vector<int64_t> begin(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) begin[i + 1] = begin[i] + batch / n + (i < batch % n ? 1 : 0);

  // Several threads each calling a multi-threaded OpenBLAS would queue for its pool.
  // (Measured: giving the whole-batch embedding below all BLAS threads was slower.)
  runtime::ScopedBlasThreads blas(static_cast<int>(options.threads_per_shard));
  const bool cuda = images.is_cuda();
  // The patch embedding runs once over the whole batch: a conv stem's BatchNorm then sees
  // the statistics of the batch, not of a row block, and updates its running statistics
  // once, from one thread. Each block continues from its own detached rows, whose
  // gradients are sent back through the embedding after the blocks' backward.
  torch::Tensor patches;
  {
    compat::AutocastGuard autocast(cuda, at::kBFloat16, options.bf16);
    patches = model->visual->embed(images);
  }
  std::vector<torch::Tensor> block_patches(n);
  for (int64_t i = 0; i < n; ++i) {
    block_patches[i] =
        patches.detach().slice(0, begin[i], begin[i + 1]).requires_grad_(patches.requires_grad());
  }
  std::vector<model::CoCaOutput> outs(n);
  std::vector<torch::Tensor> caption_sums(n);
  run_on_threads(n, options.threads_per_shard, [&](int64_t i) {
    const auto tx = text.slice(0, begin[i], begin[i + 1]);
    compat::AutocastGuard autocast(cuda, at::kBFloat16, options.bf16);
    auto o = model->forward_patches(block_patches[i], tx);
    if (options.bf16) {  // the losses in fp32
      o.image_features = o.image_features.to(torch::kFloat);
      o.text_features = o.text_features.to(torch::kFloat);
      o.logits = o.logits.to(torch::kFloat);
      o.logit_scale = o.logit_scale.to(torch::kFloat);
    }
    caption_sums[i] = caption_loss(o.logits, tx, loss.pad_id, loss.label_smoothing).sum;
    outs[i] = std::move(o);
  });

  ShardedStepLoss result;
  double caption_sum = 0;
  for (const auto& c : caption_sums) caption_sum += c.item<double>();
  result.caption = caption_sum * caption_scale;

  // The contrastive loss over the whole batch, on detached copies of the features.
  torch::Tensor d_image, d_text, d_scale;
  const bool contrastive = loss.lambda_con != 0;
  if (contrastive) {
    std::vector<torch::Tensor> img, txt;
    for (const auto& o : outs) {
      img.push_back(o.image_features.detach());
      txt.push_back(o.text_features.detach());
    }
    auto image_all = torch::cat(img).requires_grad_();
    auto text_all = torch::cat(txt).requires_grad_();
    auto scale = outs[0].logit_scale.detach().requires_grad_();
    const auto con = contrastive_loss(image_all, text_all, scale, loss.reduction) * loss.lambda_con;
    result.contrastive = con.item<double>();
    if (std::isfinite(result.contrastive + result.caption)) {
      con.backward();
      d_image = image_all.grad();
      d_text = text_all.grad();
      d_scale = scale.grad();
    }
  }
  result.finite = std::isfinite(result.contrastive + result.caption);
  if (!result.finite) return result;

  run_on_threads(n, options.threads_per_shard, [&](int64_t i) {
    std::vector<torch::Tensor> roots{caption_sums[i] * caption_scale};
    std::vector<torch::Tensor> grads{torch::ones_like(roots[0])};
    if (contrastive) {
      const int64_t rows = begin[i + 1] - begin[i];
      roots.push_back(outs[i].image_features);
      grads.push_back(d_image.narrow(0, begin[i], rows));
      roots.push_back(outs[i].text_features);
      grads.push_back(d_text.narrow(0, begin[i], rows));
      if (i == 0) {
        roots.push_back(outs[0].logit_scale);
        grads.push_back(d_scale);
      }
    }
    torch::autograd::backward(roots, grads);
  });
  if (patches.requires_grad()) {
    std::vector<torch::Tensor> d_patches;
    for (const auto& p : block_patches) {
      d_patches.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
    }
    patches.backward(torch::cat(d_patches));
  }
  return result;
}

int64_t resolve_batch_shards(int64_t configured, int64_t threads, int64_t batch, bool cuda,
                             bool distributed) {
  if (configured > 0) return configured;
  if (cuda || distributed || threads < 2) return 1;
  if (batch % threads != 0 || batch / threads < 2) return 1;
  return threads;
}

}  // namespace coca::train
