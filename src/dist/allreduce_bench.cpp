#include "coca/dist/allreduce_bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "coca/dist/collectives.h"

namespace coca::dist {

AllReduceMeasurement measure_all_reduce(const Context& ctx, int64_t bytes, int64_t iters) {
  if (bytes < 4 || iters < 1) {
    throw std::invalid_argument("measure_all_reduce: need bytes >= 4 and iters >= 1");
  }
  torch::Tensor buf =
      torch::ones({bytes / 4}, torch::TensorOptions(torch::kFloat).device(ctx.device));
  std::vector<double> times;
  for (int64_t i = 0; i <= iters; ++i) {
    barrier(ctx);
    const auto t0 = std::chrono::steady_clock::now();
    all_reduce_sum_(ctx, buf);
    if (buf.is_cuda()) buf.cpu();  // waits for the device
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) times.push_back(s);  // the first one is a warm-up
  }
  std::sort(times.begin(), times.end());
  torch::Tensor median = torch::tensor({times[times.size() / 2]}, torch::kDouble).to(ctx.device);
  broadcast_(ctx, median, 0);
  AllReduceMeasurement m;
  m.bytes = (bytes / 4) * 4;
  m.seconds_median = median.cpu().item<double>();
  m.algo_gbps = static_cast<double>(m.bytes) / m.seconds_median / 1e9;
  const double w = ctx.world_size;
  m.bus_gbps = m.algo_gbps * (w > 1 ? 2.0 * (w - 1.0) / w : 0.0);
  return m;
}

}  // namespace coca::dist
