// Measured all-reduce throughput of the process group (`coca bench allreduce` under
// `coca launch`), to size dist.bucket_mb and to compare with the compute time of a step.
#pragma once

#include <cstdint>

#include "coca/dist/context.h"

namespace coca::dist {

struct AllReduceMeasurement {
  int64_t bytes = 0;          ///< size of the reduced fp32 buffer
  double seconds_median = 0;  ///< median time of one all-reduce (collective, all ranks)
  double algo_gbps = 0;       ///< bytes / seconds_median / 1e9
  double bus_gbps = 0;        ///< algo_gbps * 2 (W - 1) / W (ring all-reduce traffic per rank)
};

/// All-reduces a fp32 buffer of `bytes` `iters` times after one warm-up, with a barrier
/// before each; returns the median (the same on every rank: rank 0's times are broadcast).
AllReduceMeasurement measure_all_reduce(const Context& ctx, int64_t bytes, int64_t iters);

}  // namespace coca::dist
