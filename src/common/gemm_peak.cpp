#include "coca/common/gemm_peak.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "coca/common/runtime.h"

namespace coca {
namespace {

/// Median and fastest of `times` (seconds per round of `copies` GEMMs of `shape`).
GemmMeasurement summarise(const GemmShape& shape, std::vector<double> times, int64_t copies) {
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  const double flops = 2.0 * shape.m * shape.k * shape.n * copies;
  GemmMeasurement m;
  m.shape = shape;
  m.seconds_median = times[times.size() / 2];
  m.seconds_min = *std::min_element(times.begin(), times.end());
  m.gflops = flops / m.seconds_median / 1e9;
  m.peak_gflops = flops / m.seconds_min / 1e9;
  return m;
}

}  // namespace

GemmMeasurement measure_gemm(const GemmShape& shape, int64_t iters, bool bf16) {
  torch::NoGradGuard no_grad;
  const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  const auto a = torch::randn({shape.m, shape.k}).to(dtype);
  const auto b = torch::randn({shape.k, shape.n}).to(dtype);
  auto c = torch::empty({shape.m, shape.n}, dtype);
  torch::mm_out(c, a, b);  // warm-up: thread pools, page faults
  std::vector<double> times;
  times.reserve(static_cast<size_t>(std::max<int64_t>(iters, 1)));
  for (int64_t i = 0; i < std::max<int64_t>(iters, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  return summarise(shape, std::move(times), 1);
}

GemmMeasurement measure_gemm_concurrent(const GemmShape& shape, int64_t iters, int64_t workers,
                                        bool bf16) {
  torch::NoGradGuard no_grad;
  const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  const int64_t n = std::max<int64_t>(workers, 1);
  const int64_t rounds = std::max<int64_t>(iters, 1);
  std::vector<torch::Tensor> a, b, c;
  for (int64_t w = 0; w < n; ++w) {
    a.push_back(torch::randn({shape.m, shape.k}).to(dtype));
    b.push_back(torch::randn({shape.k, shape.n}).to(dtype));
    c.push_back(torch::empty({shape.m, shape.n}, dtype));
  }
  runtime::ScopedBlasThreads blas(1);
  std::vector<double> times;
  for (int64_t r = 0; r <= rounds; ++r) {  // round 0 warms up
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int64_t w = 0; w < n; ++w) {
      threads.emplace_back([&, w] {
        runtime::set_thread_local_intra_op_threads(1);
        torch::mm_out(c[w], a[w], b[w]);
      });
    }
    for (auto& t : threads) t.join();
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  return summarise(shape, std::move(times), n);
}

}  // namespace coca
