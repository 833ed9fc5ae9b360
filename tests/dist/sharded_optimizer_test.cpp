// ZeRO-1 over 2 Gloo ranks: sharded Adam gives the same parameters as replicated Adam
// after several steps; the partition is contiguous and balanced; a saved shard loads.
#include "coca/dist/sharded_optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "coca/dist/collectives.h"
#include "coca/dist/grad_sync.h"
#include "dist/dist_test_utils.h"
#include "test_utils.h"

namespace coca::dist {
namespace {

using coca::testing::run_ranks;
using coca::testing::tensor_near;

TEST(ShardedOptimizerTest, PartitionIsContiguousAndBalancedByNumel) {
  std::vector<torch::Tensor> p = {torch::zeros({10}), torch::zeros({10}), torch::zeros({40}),
                                  torch::zeros({10}), torch::zeros({30})};
  // Cumulative midpoints 5, 15, 40, 65, 85 of 100 elements.
  EXPECT_EQ(partition_by_numel(p, 2), (std::vector<int>{0, 0, 0, 1, 1}));
  EXPECT_EQ(partition_by_numel(p, 4), (std::vector<int>{0, 0, 1, 2, 3}));
  EXPECT_EQ(partition_by_numel(p, 1), (std::vector<int>{0, 0, 0, 0, 0}));
  EXPECT_EQ(partition_by_numel({torch::zeros({5})}, 3), (std::vector<int>{1}));
}

torch::nn::Sequential make_model() {
  torch::manual_seed(21);
  auto m =
      torch::nn::Sequential(torch::nn::Linear(5, 12), torch::nn::ReLU(), torch::nn::Linear(12, 12),
                            torch::nn::ReLU(), torch::nn::Linear(12, 2));
  m->to(torch::kDouble);
  return m;
}

TEST(ShardedOptimizerTest, Zero1MatchesReplicatedAdam) {
  constexpr int kWorld = 2;
  constexpr int64_t kB = 6;
  constexpr int kSteps = 4;
  auto base = make_model();
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({kSteps, kWorld * kB, 5}, torch::kDouble);
  const torch::Tensor y = torch::randn({kSteps, kWorld * kB, 2}, torch::kDouble);
  auto adam = [](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::Adam>(std::move(p),
                                                torch::optim::AdamOptions(0.05).weight_decay(0.01));
  };

  std::vector<std::vector<torch::Tensor>> sharded_params(kWorld), plain_params(kWorld);
  std::vector<size_t> local_counts(kWorld);
  std::vector<size_t> state_sizes(kWorld);
  std::vector<std::string> reload_error(kWorld);
  auto results = run_ranks(kWorld, [&](Context& ctx) {
    torch::nn::Sequential a(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone()));
    torch::nn::Sequential b(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone()));
    GradSync sync_a(ctx, a->named_parameters(), 25.0);
    GradSync sync_b(ctx, b->named_parameters(), 25.0);
    ShardedOptimizer zero(a->parameters(), adam, ctx);
    auto plain = adam(b->parameters());
    local_counts[ctx.rank] = zero.local_indices().size();
    for (int s = 0; s < kSteps; ++s) {
      const torch::Tensor xs = x[s].narrow(0, ctx.rank * kB, kB);
      const torch::Tensor ys = y[s].narrow(0, ctx.rank * kB, kB);
      zero.zero_grad();
      torch::mse_loss(a->forward(xs), ys).backward();
      sync_a.finish();
      zero.step();
      plain->zero_grad();
      torch::mse_loss(b->forward(xs), ys).backward();
      sync_b.finish();
      plain->step();
    }
    state_sizes[ctx.rank] = zero.local_optimizer().state().size();
    for (auto& p : a->parameters()) sharded_params[ctx.rank].push_back(p.detach().clone());
    for (auto& p : b->parameters()) plain_params[ctx.rank].push_back(p.detach().clone());

    // Save this rank's shard, load it into a fresh sharded optimizer, step both once
    // more with the same gradients: same parameters.
    std::stringstream buf;
    {
      torch::serialize::OutputArchive out;
      zero.save(out);
      out.save_to(buf);
    }
    torch::nn::Sequential c(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(a->clone()));
    ShardedOptimizer zero_c(c->parameters(), adam, ctx);
    torch::serialize::InputArchive in;
    in.load_from(buf);
    zero_c.load(in);
    const auto pa = a->parameters();
    const auto pc = c->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      pa[i].mutable_grad() = torch::full_like(pa[i], 0.1);
      pc[i].mutable_grad() = torch::full_like(pc[i], 0.1);
    }
    zero.step();
    zero_c.step();
    for (size_t i = 0; i < pa.size(); ++i) {
      if (!torch::equal(pa[i], pc[i])) reload_error[ctx.rank] = "param " + std::to_string(i);
    }
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_GT(local_counts[r], 0u) << "rank " << r << " owns nothing";
    EXPECT_EQ(state_sizes[r], local_counts[r]) << "rank " << r << " keeps state for others";
    EXPECT_EQ(reload_error[r], "") << "rank " << r;
    ASSERT_EQ(sharded_params[r].size(), plain_params[r].size());
    for (size_t i = 0; i < plain_params[r].size(); ++i) {
      EXPECT_TRUE(tensor_near(sharded_params[r][i], plain_params[r][i], 1e-12))
          << "rank " << r << " param " << i;
      // And the parameters actually moved.
      EXPECT_FALSE(torch::equal(plain_params[r][i], base->parameters()[i]));
    }
  }
  EXPECT_EQ(local_counts[0] + local_counts[1], base->parameters().size());
}

TEST(ShardedOptimizerTest, LoadRejectsOtherRank) {
  DistConfig cfg;
  const Context single = init_distributed(cfg, LaunchEnv{});
  torch::Tensor w = torch::zeros({3}, torch::requires_grad());
  auto sgd = [](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::SGD>(std::move(p), torch::optim::SGDOptions(0.1));
  };
  ShardedOptimizer opt({w}, sgd, single);
  torch::serialize::OutputArchive out;
  opt.save(out);
  std::stringstream buf;
  out.save_to(buf);
  Context other = single;
  other.rank = 1;
  other.world_size = 2;  // no group: only the metadata check runs
  ShardedOptimizer opt2({w}, sgd, other);
  torch::serialize::InputArchive in;
  in.load_from(buf);
  try {
    opt2.load(in);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("saved by rank 0 of 1"), std::string::npos) << e.what();
  }
}

// With more ranks than tensors a rank owns nothing: it still gets an (empty) inner
// optimizer, so an LR scheduler can drive local_optimizer() on every rank.
TEST(ShardedOptimizerTest, RankOwningNothingHasAnEmptyOptimizer) {
  Context ctx;  // metadata only: rank 0 of 3, no group
  ctx.world_size = 3;
  torch::Tensor w = torch::zeros({4}, torch::requires_grad());
  ShardedOptimizer opt(
      {w},
      [](std::vector<torch::Tensor> p) {
        return std::make_unique<torch::optim::Adam>(std::move(p), torch::optim::AdamOptions(0.1));
      },
      ctx);
  EXPECT_EQ(opt.owners(), std::vector<int>{1});
  EXPECT_TRUE(opt.local_indices().empty());
  w.mutable_grad() = torch::ones({4});
  opt.step();  // steps nothing locally
  EXPECT_TRUE(torch::equal(w, torch::zeros({4})));
  opt.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

}  // namespace
}  // namespace coca::dist
