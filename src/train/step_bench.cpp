#include "coca/train/step_bench.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "coca/common/compat.h"
#include "coca/common/gemm_peak.h"
#include "coca/common/runtime.h"
#include "coca/model/coca.h"
#include "coca/model/model_info.h"
#include "coca/optim/lr_schedule.h"
#include "coca/optim/param_groups.h"
#include "coca/train/losses.h"
#include "coca/train/parallel_step.h"

namespace coca::train {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

/// GFLOP/s this machine reaches on the step's GEMMs: each representative shape (MLP and
/// attention projections of each tower, output logits) is timed, and the limit is the
/// FLOP-weighted harmonic mean, i.e. total GEMM FLOPs / total time at those speeds.
double gemm_limit(const model::CoCaConfig& m, int64_t batch, int64_t threads, bool bf16) {
  const auto& v = m.vision;
  const auto& t = m.text;
  const int64_t n_img = (v.image_size / v.patch_size) * (v.image_size / v.patch_size) +
                        (v.class_token ? 1 : 0);
  const int64_t T = t.context_length;
  struct Item {
    GemmShape shape;
    double flops;  // per step, forward
  };
  const auto f = [](int64_t m_, int64_t k, int64_t n) { return 2.0 * m_ * k * n; };
  const int64_t rows_v = batch * n_img, rows_t = batch * (T + 1), rows_m = batch * (T - 1);
  const int64_t mm_layers = m.multimodal.layers * (m.layout == "open_clip" ? 2 : 1);
  std::vector<Item> items = {
      {{rows_v, v.width, v.mlp_dim}, v.layers * 2 * f(rows_v, v.width, v.mlp_dim)},
      {{rows_v, v.width, 3 * v.width}, v.layers * (f(rows_v, v.width, 3 * v.width) +
                                                   f(rows_v, v.width, v.width))},
      {{rows_t, t.width, t.mlp_dim}, t.layers * 2 * f(rows_t, t.width, t.mlp_dim) +
                                         mm_layers * 2 * f(rows_m, t.width, m.multimodal.mlp_dim)},
      {{rows_t, t.width, 3 * t.width},
       (t.layers + m.multimodal.layers) * (f(rows_t, t.width, 3 * t.width) + f(rows_t, t.width, t.width))},
      {{rows_m, t.width, t.vocab_size}, f(rows_m, t.width, t.vocab_size)},
  };
  double total_flops = 0, total_seconds = 0;
  for (const auto& item : items) {
    // The faster of one GEMM on every thread and one GEMM per thread side by side (how
    // runtime.batch_shards runs), each the better of two medians: the limit is the best
    // this machine does on the shape, however it is scheduled.
    // Each is the fastest of enough repetitions to fill ~50 ms (at least 5): a limit, and
    // other load on the machine can only make a repetition slower, never faster.
    const double gemm_flops = 2.0 * item.shape.m * item.shape.k * item.shape.n;
    const auto iters = static_cast<int64_t>(std::clamp(0.05 * 2e11 / gemm_flops, 5.0, 200.0));
    double best = 0;
    for (int round = 0; round < 2; ++round) {
      best = std::max(best, measure_gemm(item.shape, iters, bf16).peak_gflops);
      if (threads > 1) {
        // Each worker's share of the rows, as a step split into `threads` blocks has.
        GemmShape part = item.shape;
        part.m = std::max<int64_t>(1, part.m / threads);
        best = std::max(best, measure_gemm_concurrent(part, iters, threads, bf16).peak_gflops);
      }
    }
    total_flops += item.flops;
    total_seconds += item.flops / (best * 1e9);
  }
  return total_flops / total_seconds / 1e9;
}

}  // namespace

StepBenchResult bench_step(const config::RunConfig& cfg, const StepBenchOptions& options) {
  StepBenchResult r;
  r.batch = options.batch > 0 ? options.batch : cfg.train.batch_size;
  r.steps = options.steps;
  r.text_length = cfg.model.text.context_length;
  r.optimizer = cfg.optim.name;
  r.threads = runtime::thread_summary();
  r.precision = cfg.train.precision;
  const bool bf16 = r.precision == "bf16";
  torch::manual_seed(cfg.train.seed);
  model::CoCa model(cfg.model);
  model->train();
  const auto specs = optim::make_param_group_specs(*model, cfg.optim);
  auto optimizer = optim::make_optimizer(cfg.optim, optim::make_param_groups(specs, cfg.optim));
  const auto loss = CoCaLoss::from_config(cfg.train, cfg.model.text.pad_id);
  const auto& v = cfg.model.vision;
  const auto images = torch::randn({r.batch, 3, v.image_size, v.image_size});
  // Random real tokens (never the pad id), so every caption position counts.
  const auto text =
      torch::randint(cfg.model.text.pad_id + 1, cfg.model.text.vocab_size,
                     {r.batch, cfg.model.text.context_length}, torch::kLong);
  r.shards = resolve_batch_shards(cfg.runtime.batch_shards, at::get_num_threads(), r.batch,
                                  /*cuda=*/false, /*distributed=*/false);
  const int64_t tokens = text.slice(1, 1).ne(cfg.model.text.pad_id).sum().item<int64_t>();
  std::vector<double> total, fwd, bwd, opt;
  for (int64_t i = 0; i < options.warmup + options.steps; ++i) {
    const auto t0 = Clock::now();
    optim::zero_grad_to_none(*optimizer);
    double t_fwd = 0, t_bwd = 0;
    if (r.shards > 1) {
      // Forward and backward interleave across the shards' threads: one figure for both.
      ShardedStepOptions sharded;
      sharded.shards = r.shards;
      sharded.threads_per_shard = std::max(1, at::get_num_threads() / static_cast<int>(r.shards));
      sharded.bf16 = bf16;
      (void)sharded_forward_backward(model, images, text, loss, loss.lambda_cap / tokens, sharded);
      t_fwd = ms_since(t0);
    } else {
      // As the trainer: bf16 autocast over the forward, the losses in fp32.
      const auto out = [&] {
        compat::AutocastGuard autocast(/*cuda=*/false, at::kBFloat16, bf16);
        return model->forward(images, text);
      }();
      const auto parts =
          loss(out.image_features.to(torch::kFloat), out.text_features.to(torch::kFloat),
               out.logit_scale.to(torch::kFloat), out.logits.to(torch::kFloat), text);
      (void)parts.total.item<float>();
      t_fwd = ms_since(t0);
      const auto t1 = Clock::now();
      parts.total.backward();
      t_bwd = ms_since(t1);
    }
    const auto t2 = Clock::now();
    optimizer->step();
    const double t_opt = ms_since(t2);
    const double t_all = ms_since(t0);
    if (i < options.warmup) continue;
    total.push_back(t_all);
    fwd.push_back(t_fwd);
    bwd.push_back(t_bwd);
    opt.push_back(t_opt);
  }
  r.median_ms = median(total);
  r.min_ms = *std::min_element(total.begin(), total.end());
  r.max_ms = *std::max_element(total.begin(), total.end());
  r.forward_ms = median(fwd);
  r.backward_ms = median(bwd);
  r.optimizer_ms = median(opt);
  r.samples_per_s = r.batch / (r.median_ms / 1e3);
  r.flops_per_sample = 3.0 * model::forward_flops(cfg.model).total();
  r.achieved_gflops = r.flops_per_sample * r.batch / (r.median_ms / 1e3) / 1e9;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  r.peak_rss_mib = usage.ru_maxrss / 1024.0;  // measured before the GEMM probe allocates
  r.gemm_limit_gflops = gemm_limit(cfg.model, r.batch, at::get_num_threads(), bf16);
  return r;
}

std::string format_step_bench(const config::RunConfig& cfg, const StepBenchResult& r) {
  std::string out;
  out += fmt::format("model {} ({} layout), optimizer {}, batch {}, text {}, {}, {}\n",
                     cfg.model.name, cfg.model.layout, r.optimizer, r.batch, r.text_length,
                     r.precision == "bf16" ? "bf16 autocast" : "fp32", r.threads);
  out += fmt::format("step       median {:.1f} ms (min {:.1f}, max {:.1f}) over {} steps\n",
                     r.median_ms, r.min_ms, r.max_ms, r.steps);
  if (r.shards > 1) {
    out += fmt::format("  forward+backward {:.1f} ms as {} concurrent row blocks "
                       "(runtime.batch_shards)   optimizer {:.1f} ms\n",
                       r.forward_ms, r.shards, r.optimizer_ms);
  } else {
    out += fmt::format("  forward  {:.1f} ms   backward {:.1f} ms   optimizer {:.1f} ms\n",
                       r.forward_ms, r.backward_ms, r.optimizer_ms);
  }
  out += fmt::format("throughput {:.2f} samples/s\n", r.samples_per_s);
  out += fmt::format("FLOPs      {:.3f} GFLOP per sample (3 x forward), {:.1f} GFLOP/s achieved\n",
                     r.flops_per_sample / 1e9, r.achieved_gflops);
  out += fmt::format("memory     peak RSS {:.0f} MiB\n", r.peak_rss_mib);
  out += fmt::format("GEMM limit {:.1f} GFLOP/s on this model's GEMM shapes in {}, measured now: "
                     "the step runs at {:.0f}% of this machine's GEMM limit\n",
                     r.gemm_limit_gflops, r.precision,
                     100.0 * r.achieved_gflops / r.gemm_limit_gflops);
  return out;
}

}  // namespace coca::train
