// `coca bench ...`: measured throughput. Every figure printed here is measured in this run.
#include <fmt/format.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
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
#include "coca/eval/inference.h"
#include "coca/model/coca.h"
#include "coca/train/trainer.h"

namespace coca::cli {
namespace {

template <typename Args>
int bench_generate(const Args& args) {
  model::CoCa model{nullptr};
  std::string name;
  if (!args.checkpoint.empty()) {
    model = train::load_checkpoint_model(args.checkpoint).model;
    name = args.checkpoint;
  } else if (!args.config.files.empty() || !args.preset.empty()) {
    // A random-init model: the preset's model section, then files and --set on top.
    config::RunConfig cfg;
    if (!args.preset.empty()) {
      cfg.model = config::model_from_yaml(config::preset_yaml(args.preset), args.preset);
    }
    for (const auto& f : args.config.files) config::apply_file(cfg, f);
    for (const auto& o : args.config.overrides) config::apply_override(cfg, o);
    model = model::CoCa(cfg.model);
    name = cfg.model.name + " (random init)";
  } else {
    throw UsageError("bench generate: give --checkpoint, --config or --preset");
  }
  model->eval();
  torch::manual_seed(0);
  const int64_t size = model->config.vision.image_size;
  const auto images = torch::randn({args.batch, 3, size, size});
  const int64_t vocab = model->config.text.vocab_size;
  const eval::SpecialTokens special{vocab - 2, vocab - 1};  // end token blocked anyway
  eval::GenerateConfig cfg;
  cfg.beams = args.beams;
  cfg.max_len = args.max_len;
  std::cout << "[bench] " << runtime::thread_summary() << "\n";
  std::cout << fmt::format("[bench] generate: {}, batch {}, {} tokens, beams {}\n", name,
                           args.batch, std::min(args.max_len, model->config.text.context_length),
                           args.beams);
  cfg.kv_cache = true;
  eval::time_generation(model, images.narrow(0, 0, 1), cfg, special);  // warm-up
  // Best of 3 alternating runs per mode (robust to other load on the machine).
  eval::GenerationTiming cached, uncached;
  for (int rep = 0; rep < 3; ++rep) {
    for (const bool kv : {true, false}) {
      cfg.kv_cache = kv;
      const auto t = eval::time_generation(model, images, cfg, special);
      auto& best = kv ? cached : uncached;
      if (rep == 0 || t.seconds < best.seconds) best = t;
    }
  }
  std::cout << fmt::format("{:<12} {:>10} {:>10} {:>12}   (best of 3)\n", "decoder", "tokens",
                           "seconds", "tokens/s");
  std::cout << fmt::format("{:<12} {:>10} {:>10.3f} {:>12.1f}\n", "kv_cache", cached.tokens,
                           cached.seconds, cached.tokens_per_s);
  std::cout << fmt::format("{:<12} {:>10} {:>10.3f} {:>12.1f}\n", "no_cache", uncached.tokens,
                           uncached.seconds, uncached.tokens_per_s);
  std::cout << fmt::format("speed-up {:.2f}x\n",
                           cached.tokens_per_s / std::max(uncached.tokens_per_s, 1e-9));
  return 0;
}

}  // namespace

Subcommand add_bench(CLI::App& root) {
  struct Args {
    int64_t size = 1024;
    int64_t iters = 20;
    int64_t threads = 0;
    double mb = 25.0;
    ConfigArgs config;
    int64_t batches = 20;
    train::StepBenchOptions step;
    std::string checkpoint;
    std::string preset;
    int64_t batch = 8;
    int64_t max_len = 30;
    int64_t beams = 1;
    bool bf16 = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("bench", "measured throughput benchmarks");
  app->require_subcommand(1);
  CLI::App* gemm = app->add_subcommand("gemm", "matrix-multiply GFLOP/s of this machine");
  gemm->add_flag("--bf16", args->bf16, "bfloat16 operands (oneDNN) instead of fp32 (BLAS)");
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

  CLI::App* generate = app->add_subcommand(
      "generate", "caption tokens/s with and without the KV cache (random images)");
  auto* from_ckpt = generate->add_option("--checkpoint", args->checkpoint, "checkpoint folder");
  auto* from_preset = generate->add_option("--preset", args->preset,
                                           "model preset, e.g. coca_demo (random-init model)");
  args->config.add_to(*generate);  // --config/--set: random-init model from a run config
  from_ckpt->excludes(from_preset);
  generate->add_option("--batch", args->batch, "images per generate() call")
      ->check(CLI::PositiveNumber);
  generate->add_option("--max-len", args->max_len, "tokens generated per image")
      ->check(CLI::PositiveNumber);
  generate->add_option("--beams", args->beams, "beam width")->check(CLI::PositiveNumber);
  generate->add_option("--threads", args->threads, "compute threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [args, step, data] {
    if (args->threads == 0 && (step->parsed() || data->parsed())) {
      return config::load_run_config(args->config.files, args->config.overrides).runtime.threads;
    }
    return args->threads;
  };
  cmd.run = [args, gemm, allreduce, data, step, generate] {
    if (generate->parsed()) return bench_generate(*args);
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
                                 "{}; {:.2f} CPU-s = {:.1f} images per CPU-second\n",
                                 workers, m.images, m.seconds, m.images_per_second,
                                 workers == 1 ? "" : fmt::format(" ({:.2f}x one worker)",
                                                                 m.images_per_second / one),
                                 m.cpu_seconds,
                                 m.cpu_seconds > 0 ? static_cast<double>(m.images) / m.cpu_seconds
                                                   : 0.0);
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
      const auto m = measure_gemm({args->size, args->size, args->size}, args->iters, args->bf16);
      std::cout << fmt::format(
          "[bench] gemm {}x{}x{} {}: median {:.3f} ms, {:.1f} GFLOP/s (fastest {:.3f} ms, {:.1f} "
          "GFLOP/s)\n",
          args->size, args->size, args->size, args->bf16 ? "bf16" : "fp32",
          m.seconds_median * 1e3, m.gflops, m.seconds_min * 1e3, m.peak_gflops);
    }
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
