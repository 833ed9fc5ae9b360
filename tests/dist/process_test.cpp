// Two real processes: `launch` starts this test binary twice with the torchrun-style
// environment; each runs the Worker test below, which reads that environment with
// init_distributed(cfg), and checks collective results. The parent passes when both
// workers exit 0.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "coca/dist/collectives.h"
#include "coca/dist/grad_sync.h"
#include "coca/dist/launch.h"

namespace coca::dist {
namespace {

constexpr const char* kWorkerVar = "COCA_DIST_TEST_WORKER";

TEST(DistProcessTest, Worker) {
  if (std::getenv(kWorkerVar) == nullptr) GTEST_SKIP() << "runs only under DistProcessTest.TwoProcesses";
  DistConfig cfg;
  cfg.timeout_s = 20;
  const Context ctx = init_distributed(cfg);
  ASSERT_EQ(ctx.world_size, 2);
  ASSERT_TRUE(ctx.distributed());
  EXPECT_EQ(ctx.backend, "gloo");
  torch::Tensor t = torch::full({5}, static_cast<float>(ctx.rank + 1));
  all_reduce_sum_(ctx, t);
  EXPECT_TRUE(torch::equal(t, torch::full({5}, 3.0f)));
  // Gradient averaging across processes: d/dw sum(w * (rank + 1)) averaged = 1.5.
  torch::Tensor w = torch::zeros({4}, torch::requires_grad());
  GradSync sync(ctx, std::vector<std::pair<std::string, torch::Tensor>>{{"w", w}}, 25.0);
  (w * static_cast<float>(ctx.rank + 1)).sum().backward();
  sync.finish();
  EXPECT_TRUE(torch::allclose(w.grad(), torch::full({4}, 1.5f)));
  barrier(ctx);
}

TEST(DistProcessTest, TwoProcesses) {
  LaunchOptions o;
  o.nproc = 2;
  o.threads_per_proc = 1;
  o.args = {"--gtest_filter=DistProcessTest.Worker"};  // executable: this test binary
  ::setenv(kWorkerVar, "1", 1);
  const int code = launch(o);
  ::unsetenv(kWorkerVar);
  EXPECT_EQ(code, 0) << "a worker failed; its output is above, prefixed with [rank N]";
}

}  // namespace
}  // namespace coca::dist
