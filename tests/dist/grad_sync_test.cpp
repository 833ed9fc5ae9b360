// GradSync over 2 Gloo ranks: averaged gradients of 2 ranks x batch B equal one process
// on the 2B batch (several buckets), also with 2 micro-batches of accumulation, and
// unused parameters neither hang nor get invented gradients.
#include "coca/dist/grad_sync.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "dist/dist_test_utils.h"
#include "test_utils.h"

namespace coca::dist {
namespace {

using coca::testing::run_ranks;
using coca::testing::tensor_near;

using Grads = std::map<std::string, torch::Tensor>;

torch::nn::Sequential make_mlp() {
  torch::manual_seed(11);
  return torch::nn::Sequential(torch::nn::Linear(6, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 3));
}

Grads grads_of(torch::nn::Module& m) {
  Grads g;
  for (const auto& kv : m.named_parameters()) {
    g[kv.key()] = kv.value().grad().defined() ? kv.value().grad().clone() : torch::Tensor();
  }
  return g;
}

torch::Tensor mse(torch::nn::Sequential& m, const torch::Tensor& x, const torch::Tensor& y) {
  return torch::mse_loss(m->forward(x), y);
}

struct Data {
  torch::Tensor x, y;
};
Data make_data(int64_t n) {
  torch::manual_seed(5);
  return {torch::randn({n, 6}, torch::kDouble), torch::randn({n, 3}, torch::kDouble)};
}

void expect_grads_equal(const Grads& got, const Grads& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.at(name).defined()) << what << ": " << name;
    EXPECT_TRUE(tensor_near(got.at(name), w, 1e-12)) << what << ": " << name;
  }
}

void run_case(int micro_batches, double bucket_mb) {
  constexpr int kWorld = 2;
  constexpr int64_t kB = 8;  // per rank
  auto base = make_mlp();
  base->to(torch::kDouble);
  const Data d = make_data(kWorld * kB);

  // One process, the whole 2B batch, one backward.
  auto single = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone());
  torch::nn::Sequential single_m(single);
  mse(single_m, d.x, d.y).backward();
  const Grads want = grads_of(*single);

  std::vector<Grads> got(kWorld);
  std::vector<size_t> buckets(kWorld);
  auto results = run_ranks(kWorld, [&](Context& ctx) {
    torch::nn::Sequential m(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone()));
    GradSync sync(ctx, m->named_parameters(), bucket_mb);
    buckets[ctx.rank] = sync.num_buckets();
    const int64_t mb = kB / micro_batches;
    for (int step = 0; step < 2; ++step) {  // twice: the second step reuses the buckets
      for (auto& p : m->parameters()) p.mutable_grad().reset();
      for (int i = 0; i < micro_batches; ++i) {
        sync.set_sync(i == micro_batches - 1);
        const int64_t start = ctx.rank * kB + i * mb;
        (mse(m, d.x.narrow(0, start, mb), d.y.narrow(0, start, mb)) / micro_batches).backward();
      }
      sync.finish();
    }
    got[ctx.rank] = grads_of(*m);
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < kWorld; ++r) {
    expect_grads_equal(got[r], want, "rank " + std::to_string(r));
    if (bucket_mb < 0.001) {
      EXPECT_GE(buckets[r], 3u);
    }
  }
}

TEST(GradSyncTest, TwoRanksEqualOneProcessOnDoubleBatch) { run_case(1, 25.0); }

TEST(GradSyncTest, SeveralBuckets) { run_case(1, 0.0005); }  // 524 bytes: one or two tensors each

TEST(GradSyncTest, AccumulationOverMicroBatches) { run_case(2, 0.0005); }

TEST(GradSyncTest, BucketsFollowReverseRegistrationOrder) {
  auto results = run_ranks(2, [&](Context& ctx) {
    auto m = make_mlp();
    GradSync sync(ctx, m->named_parameters(), 0.0005);
    const auto first = sync.bucket_names(0);
    if (first.empty() || first.front() != "4.bias") {
      throw std::runtime_error("first bucket starts with " + (first.empty() ? "" : first.front()));
    }
  });
  EXPECT_RANKS_OK(results);
}

// "a" is used on both ranks, "b" only on rank 0, "c" on no rank.
TEST(GradSyncTest, UnusedParametersDoNotHang) {
  std::vector<Grads> got(2);
  auto results = run_ranks(2, [&](Context& ctx) {
    torch::Tensor a = torch::ones({3}, torch::requires_grad());
    torch::Tensor b = torch::ones({2}, torch::requires_grad());
    torch::Tensor c = torch::ones({4}, torch::requires_grad());
    std::vector<std::pair<std::string, torch::Tensor>> named{{"a", a}, {"b", b}, {"c", c}};
    GradSync sync(ctx, named, 0.00001);  // one tensor per bucket
    const double k = ctx.rank + 1.0;
    torch::Tensor loss = (a * k).sum();
    if (ctx.rank == 0) loss = loss + (b * 3.0).sum();
    loss.backward();
    sync.finish();
    got[ctx.rank] = {{"a", a.grad().clone()}, {"b", b.grad().clone()}, {"c", c.grad()}};
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::allclose(got[r]["a"], torch::full({3}, 1.5)));  // (1 + 2) / 2
    EXPECT_TRUE(torch::allclose(got[r]["b"], torch::full({2}, 1.5)));  // (3 + 0) / 2
    EXPECT_FALSE(got[r]["c"].defined()) << "rank " << r;
  }
}

// A parameter used twice in one graph (tied weights) gets one hook call with the summed
// gradient: d/dw [sum(w * k) + sum(w * w)] = k + 2w, averaged over ranks (k = 1, 2).
TEST(GradSyncTest, ParameterUsedTwice) {
  std::vector<torch::Tensor> got(2);
  auto results = run_ranks(2, [&](Context& ctx) {
    torch::Tensor w = torch::full({3}, 2.0, torch::requires_grad());
    GradSync sync(ctx, std::vector<std::pair<std::string, torch::Tensor>>{{"w", w}}, 25.0);
    ((w * (ctx.rank + 1.0)).sum() + (w * w).sum()).backward();
    sync.finish();
    got[ctx.rank] = w.grad().clone();
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(torch::allclose(got[r], torch::full({3}, 1.5 + 4.0)));
}

}  // namespace
}  // namespace coca::dist
