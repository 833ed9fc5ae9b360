// `coca bench ...`: measured throughput. Every figure printed here is measured in this run.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/common/gemm_peak.h"
#include "coca/common/runtime.h"
#include "coca/config/config_io.h"
#include "coca/data/loader.h"
#include "coca/data/tokenizer.h"
#include "coca/train/data_pipeline.h"
#include "coca/train/step_bench.h"
#include "coca/dist/allreduce_bench.h"
#include "coca/dist/context.h"

namespace coca::cli {

Subcommand add_bench(CLI::App& root) {
  struct Args {
    int64_t size = 1024;
    int64_t iters = 20;
    int64_t threads = 0;
    double mb = 25.0;
    ConfigArgs config;
    int64_t batches = 20;
    train::StepBenchOptions step;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("bench", "measured throughput benchmarks");
  app->require_subcommand(1);
  CLI::App* gemm = app->add_subcommand("gemm", "fp32 matrix-multiply GFLOP/s of this machine");
  gemm->add_option("--size", args->size, "square matrix side")->check(CLI::PositiveNumber);
  gemm->add_option("--iters", args->iters, "timed repetitions")->check(CLI::PositiveNumber);
  gemm->add_option("--threads", args->threads, "compute threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* allreduce = app->add_subcommand(
      "allreduce", "all-reduce GB/s of the process group (run under coca launch --nproc N)");
  allreduce->add_option("--mb", args->mb, "buffer size in MiB (like dist.bucket_mb)")
      ->check(CLI::PositiveNumber);
  allreduce->add_option("--iters", args->iters, "timed repetitions")->check(CLI::PositiveNumber);

  CLI::App* data = app->add_subcommand(
      "data", "images/s of the training data pipeline (read, decode, transform, tokenise, batch)");
  args->config.add_to(*data);
  data->add_option("--batches", args->batches, "timed batches (after one warm-up batch)")
      ->check(CLI::PositiveNumber);
  data->add_option("--threads", args->threads, "decoding threads of the second run (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* step = app->add_subcommand(
      "step", "training-step time of a config's model and optimizer on random inputs");
  args->config.add_to(*step);
  step->add_option("--batch", args->step.batch, "samples per step (0 = train.batch_size)")
      ->check(CLI::NonNegativeNumber);
  step->add_option("--steps", args->step.steps, "timed steps")->check(CLI::PositiveNumber);
  step->add_option("--warmup", args->step.warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber);
  step->add_option("--threads", args->threads, "compute threads (0 = runtime.threads)")
      ->check(CLI::NonNegativeNumber);

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [args, step, data] {
    if (args->threads == 0 && (step->parsed() || data->parsed())) {
      return config::load_run_config(args->config.files, args->config.overrides).runtime.threads;
    }
    return args->threads;
  };
  cmd.run = [args, gemm, allreduce, data, step] {
    if (step->parsed()) {
      const auto cfg = config::load_run_config(args->config.files, args->config.overrides);
      const auto r = train::bench_step(cfg, args->step);
      std::cout << train::format_step_bench(cfg, r);
      return 0;
    }
    if (data->parsed()) {
      const auto cfg = config::load_run_config(args->config.files, args->config.overrides);
      std::shared_ptr<const data::Tokenizer> tokenizer =
          data::make_tokenizer(cfg.data.tokenizer, "data.tokenizer");
      const auto sources = train::make_training_sources(cfg);
      const auto hooks = train::make_training_hooks(cfg, tokenizer);
      const int64_t all = args->threads > 0 ? args->threads : runtime::available_cores();
      std::cout << "[bench] " << runtime::thread_summary() << "\n";
      double one = 0;
      for (int64_t workers : {int64_t{1}, all}) {
        auto options = data::make_loader_options(cfg.data, cfg.train.batch_size, 0, 1, workers);
        options.workers = workers;
        const auto m = data::measure_loader_throughput(sources, options, hooks, args->batches);
        if (workers == 1) one = m.images_per_second;
        std::cout << fmt::format("[bench] data: {} worker(s): {} images in {:.2f} s = {:.1f} images/s"
                                 "{}\n",
                                 workers, m.images, m.seconds, m.images_per_second,
                                 workers == 1 ? "" : fmt::format(" ({:.2f}x one worker)",
                                                                 m.images_per_second / one));
        if (all == 1) break;
      }
      return 0;
    }
    if (allreduce->parsed()) {
      const dist::Context ctx = dist::init_distributed(dist::DistConfig{});
      if (!ctx.distributed()) {
        throw UsageError("bench allreduce: single process; run it as "
                         "`coca launch --nproc 2 -- bench allreduce`");
      }
      const auto bytes = static_cast<int64_t>(args->mb * 1024 * 1024);
      const auto m = dist::measure_all_reduce(ctx, bytes, args->iters);
      if (ctx.is_main()) {
        std::cout << fmt::format(
            "[bench] all_reduce {:.1f} MiB fp32, {} ranks, backend {}: median {:.3f} ms, "
            "algo {:.2f} GB/s, bus {:.2f} GB/s\n",
            static_cast<double>(m.bytes) / (1024 * 1024), ctx.world_size, ctx.backend,
            m.seconds_median * 1e3, m.algo_gbps, m.bus_gbps);
      }
      return 0;
    }
    if (gemm->parsed()) {
      std::cout << "[bench] " << runtime::thread_summary() << "\n";
      const auto m = measure_gemm({args->size, args->size, args->size}, args->iters);
      std::cout << fmt::format("[bench] gemm {}x{}x{}: median {:.3f} ms, {:.1f} GFLOP/s\n",
                               args->size, args->size, args->size, m.seconds_median * 1e3,
                               m.gflops);
    }
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
