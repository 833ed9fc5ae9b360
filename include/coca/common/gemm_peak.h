// Measured matrix-multiply throughput of this machine, for "x% of this machine's GEMM
// limit" figures in benchmarks.
#pragma once

#include <cstdint>
#include <vector>

namespace coca {

struct GemmShape {
  int64_t m = 0;  ///< rows of A and C
  int64_t k = 0;  ///< columns of A, rows of B
  int64_t n = 0;  ///< columns of B and C
};

struct GemmMeasurement {
  GemmShape shape;
  double seconds_median = 0;  ///< median time of one C = A @ B
  double seconds_min = 0;     ///< fastest repetition: what the machine can do on the shape
  double gflops = 0;          ///< 2*m*k*n / seconds_median / 1e9
  double peak_gflops = 0;     ///< 2*m*k*n / seconds_min / 1e9 (a limit: noise only slows)
};

/// Times C = A @ B on the CPU `iters` times after one warm-up, in fp32 (LibTorch's BLAS) or,
/// with `bf16`, in bfloat16 (oneDNN, as bf16 autocast runs a step's GEMMs); reports the
/// median and the fastest repetition.
GemmMeasurement measure_gemm(const GemmShape& shape, int64_t iters, bool bf16 = false);

/// The same GEMM run as `workers` independent copies at once, one thread each (one
/// intra-op and one BLAS thread per worker), as runtime.batch_shards runs a step:
/// `gflops` is the combined rate of all workers over the median of `iters` rounds,
/// `peak_gflops` over the fastest round.
GemmMeasurement measure_gemm_concurrent(const GemmShape& shape, int64_t iters, int64_t workers,
                                        bool bf16 = false);

}  // namespace coca
