// `coca bench ...`: measured throughput. Every figure printed here is measured in this run.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/gemm_peak.h"
#include "coca/common/runtime.h"

namespace coca::cli {

Subcommand add_bench(CLI::App& root) {
  struct Args {
    int64_t size = 1024;
    int64_t iters = 20;
    int64_t threads = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("bench", "measured throughput benchmarks");
  app->require_subcommand(1);
  CLI::App* gemm = app->add_subcommand("gemm", "fp32 matrix-multiply GFLOP/s of this machine");
  gemm->add_option("--size", args->size, "square matrix side")->check(CLI::PositiveNumber);
  gemm->add_option("--iters", args->iters, "timed repetitions")->check(CLI::PositiveNumber);
  gemm->add_option("--threads", args->threads, "compute threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [args] { return args->threads; };
  cmd.run = [args, gemm] {
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
