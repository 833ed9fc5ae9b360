// Launcher environment parsing, Slurm node lists, backend choice and the single-process
// context (no group, collectives are no-ops).
#include "coca/dist/context.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "coca/common/error.h"
#include "coca/dist/collectives.h"

namespace coca::dist {
namespace {

EnvLookup env_of(const std::map<std::string, std::string>& vars) {
  // The lookup returns pointers into the map, which outlives every call in a test.
  auto owned = std::make_shared<std::map<std::string, std::string>>(vars);
  return [owned](const char* name) -> const char* {
    auto it = owned->find(name);
    return it == owned->end() ? nullptr : it->second.c_str();
  };
}

TEST(DistEnvTest, NoLauncherIsSingleProcess) {
  const LaunchEnv e = read_launch_env(env_of({}));
  EXPECT_EQ(e.source, "none");
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
}

TEST(DistEnvTest, TorchrunVariables) {
  const LaunchEnv e = read_launch_env(env_of({{"RANK", "3"},
                                              {"WORLD_SIZE", "8"},
                                              {"LOCAL_RANK", "1"},
                                              {"LOCAL_WORLD_SIZE", "2"},
                                              {"MASTER_ADDR", "10.0.0.5"},
                                              {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(e.source, "env");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 1234);
}

TEST(DistEnvTest, TorchrunWinsOverSlurm) {
  const LaunchEnv e = read_launch_env(
      env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}}));
  EXPECT_EQ(e.source, "env");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
}

TEST(DistEnvTest, SlurmVariablesAndFirstHost) {
  const LaunchEnv e = read_launch_env(env_of({{"SLURM_PROCID", "5"},
                                              {"SLURM_NTASKS", "8"},
                                              {"SLURM_LOCALID", "1"},
                                              {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                                              {"SLURM_NODELIST", "gpu[07-08,11],cpu1"}}));
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "gpu07");
  EXPECT_EQ(e.master_port, 29500);
}

TEST(DistEnvTest, MalformedValuesNameTheVariable) {
  try {
    read_launch_env(env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK='x'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_launch_env(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}})), ConfigError);
}

TEST(DistEnvTest, ExpandsSlurmNodeLists) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_slurm_nodelist("node01"), V{"node01"});
  EXPECT_EQ(expand_slurm_nodelist("node[01-04,07]"),
            (V{"node01", "node02", "node03", "node04", "node07"}));
  EXPECT_EQ(expand_slurm_nodelist("a[8-10],b"), (V{"a8", "a9", "a10", "b"}));
  EXPECT_EQ(expand_slurm_nodelist("r[1-2]n[1,3]"), (V{"r1n1", "r1n3", "r2n1", "r2n3"}));
  EXPECT_EQ(expand_slurm_nodelist("x[098-101]"), (V{"x098", "x099", "x100", "x101"}));
  EXPECT_THROW(expand_slurm_nodelist("node[01-03"), std::invalid_argument);
  EXPECT_THROW(expand_slurm_nodelist("node[03-01]"), std::invalid_argument);
  EXPECT_THROW(expand_slurm_nodelist("node[a-b]"), std::invalid_argument);
}

TEST(DistBackendTest, ChoosesWhatThisBuildHas) {
#if defined(COCA_HAVE_NCCL)
  EXPECT_EQ(resolve_backend("nccl"), "nccl");
#else
  try {
    resolve_backend("nccl");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.lines().at(0)),
              "dist.backend: 'nccl' is not available in this build (LibTorch without NCCL); "
              "use gloo");
  }
#endif
#if defined(COCA_HAVE_GLOO)
  EXPECT_EQ(resolve_backend("gloo"), "gloo");
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(resolve_backend("auto"), "gloo");
  }
#endif
}

TEST(DistContextTest, SingleProcessCollectivesAreNoOps) {
  DistConfig cfg;
  cfg.backend = "gloo";
  const Context ctx = init_distributed(cfg, LaunchEnv{});
  EXPECT_FALSE(ctx.distributed());
  EXPECT_EQ(ctx.world_size, 1);
  torch::Tensor t = torch::arange(4, torch::kFloat);
  all_reduce_mean_(ctx, t);
  broadcast_(ctx, t, 0);
  barrier(ctx);
  EXPECT_TRUE(torch::equal(t, torch::arange(4, torch::kFloat)));
  torch::Tensor x = torch::randn({3, 2}, torch::requires_grad());
  torch::Tensor g = all_gather_with_grad(ctx, x);
  EXPECT_EQ(g.sizes(), x.sizes());
  g.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::ones({3, 2})));
}

}  // namespace
}  // namespace coca::dist
