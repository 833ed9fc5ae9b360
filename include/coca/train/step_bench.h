// `coca bench step`: measured training-step throughput of a config's model and optimizer
// on random inputs, split into forward / backward / optimizer, with the analytic FLOPs
// (model_info.h) and, measured in the same run, this machine's matrix-multiply speed on
// the model's own GEMM shapes, so the report can say how close the step gets to it.
#pragma once

#include <cstdint>
#include <string>

#include "coca/config/run_config.h"

namespace coca::train {

struct StepBenchOptions {
  int64_t batch = 0;   ///< samples per step; 0 = train.batch_size
  int64_t steps = 10;  ///< timed steps
  int64_t warmup = 2;  ///< untimed steps first
};

struct StepBenchResult {
  int64_t batch = 0;
  int64_t steps = 0;
  int64_t text_length = 0;
  int64_t shards = 1;  ///< concurrent row blocks per step (runtime.batch_shards resolved)
  double median_ms = 0, min_ms = 0, max_ms = 0;     ///< whole step
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0;  ///< medians per phase
  double samples_per_s = 0;                          ///< batch / median step time
  double flops_per_sample = 0;                       ///< 3 x analytic forward FLOPs
  double achieved_gflops = 0;                        ///< flops per step / median time
  double gemm_limit_gflops = 0;                      ///< measured on the model's GEMM shapes
  double peak_rss_mib = 0;                           ///< process peak resident memory
  std::string optimizer;
  std::string precision;                             ///< train.precision: fp32 | bf16
  std::string threads;                               ///< runtime::thread_summary()
};

StepBenchResult bench_step(const config::RunConfig& cfg, const StepBenchOptions& options);

/// The report, ending with "x% of this machine's GEMM limit".
std::string format_step_bench(const config::RunConfig& cfg, const StepBenchResult& r);

}  // namespace coca::train
