// Two real processes: `launch` starts this test binary twice with the torchrun-style
// environment; each runs the Worker test below, which reads that environment with
// init_distributed(cfg), and checks collective results. The parent passes when both
// workers exit 0.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "coca/dist/collectives.h"
#include "coca/dist/grad_sync.h"
#include "coca/dist/launch.h"

namespace coca::dist {
namespace {

constexpr const char* kWorkerVar = "COCA_DIST_TEST_WORKER";

TEST(DistProcessTest, Worker) {
  const char* mode = std::getenv(kWorkerVar);
  if (mode == nullptr) GTEST_SKIP() << "runs only under DistProcessTest.TwoProcesses";
  DistConfig cfg;
  cfg.timeout_s = 10;
  const Context ctx = init_distributed(cfg);
  ASSERT_EQ(ctx.world_size, 2);
  ASSERT_TRUE(ctx.distributed());
  EXPECT_EQ(ctx.backend, "gloo");
  if (std::string(mode) == "die") {
    // Rank 1 exits abruptly (exit code 0, so the launcher leaves rank 0 running); rank
    // 0's next collective must fail with an error instead of hanging.
    if (ctx.rank == 1) std::_Exit(0);
    torch::Tensor t = torch::ones({8});
    try {
      all_reduce_sum_(ctx, t);
      ADD_FAILURE() << "all_reduce succeeded although rank 1 is gone";
    } catch (const std::runtime_error& e) {
      std::cout << "[dist] rank 0 saw: " << e.what() << "\n";
      EXPECT_NE(std::string(e.what()).find("all_reduce failed on rank 0 of 2"), std::string::npos);
    }
    return;
  }
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

TEST(DistProcessTest, DeadProcessMakesPeerThrow) {
  LaunchOptions o;
  o.nproc = 2;
  o.threads_per_proc = 1;
  o.args = {"--gtest_filter=DistProcessTest.Worker"};
  ::setenv(kWorkerVar, "die", 1);
  const int code = launch(o);
  ::unsetenv(kWorkerVar);
  EXPECT_EQ(code, 0) << "rank 0 did not get the expected error; its output is above";
}

}  // namespace
}  // namespace coca::dist
