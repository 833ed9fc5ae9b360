#include "coca/common/gemm_peak.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

namespace coca {

GemmMeasurement measure_gemm(const GemmShape& shape, int64_t iters) {
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({shape.m, shape.k});
  const auto b = torch::randn({shape.k, shape.n});
  auto c = torch::empty({shape.m, shape.n});
  torch::mm_out(c, a, b);  // warm-up: thread pools, page faults
  std::vector<double> times;
  times.reserve(static_cast<size_t>(std::max<int64_t>(iters, 1)));
  for (int64_t i = 0; i < std::max<int64_t>(iters, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  GemmMeasurement m;
  m.shape = shape;
  m.seconds_median = times[times.size() / 2];
  m.gflops = 2.0 * shape.m * shape.k * shape.n / m.seconds_median / 1e9;
  return m;
}

}  // namespace coca
