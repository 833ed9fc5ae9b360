// Collectives over 2 Gloo ranks on loopback (threads of this process): values against
// hand-computed sums, the gathered contrastive gradient against a single process on the
// concatenated batch, parameter broadcast/consistency, and failure of a peer.
#include "coca/dist/collectives.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <string>

#include "dist/dist_test_utils.h"
#include "test_utils.h"

namespace coca::dist {
namespace {

using coca::testing::run_ranks;
using coca::testing::tensor_near;

TEST(DistCollectivesTest, AllReduceBroadcastAllGatherValues) {
  auto results = run_ranks(2, [](Context& ctx) {
    const float r = static_cast<float>(ctx.rank);
    torch::Tensor t = torch::full({3}, r + 1.0f);
    all_reduce_mean_(ctx, t);  // (1 + 2) / 2
    if (!torch::allclose(t, torch::full({3}, 1.5f))) throw std::runtime_error("mean wrong");
    torch::Tensor b = torch::full({2}, 10.0f * (r + 1.0f));
    broadcast_(ctx, b, 1);
    if (!torch::equal(b, torch::full({2}, 20.0f))) throw std::runtime_error("broadcast wrong");
    torch::Tensor g = all_gather(ctx, torch::full({1, 2}, r));
    if (!torch::equal(g, torch::tensor({0.0f, 0.0f, 1.0f, 1.0f}).view({2, 2}))) {
      throw std::runtime_error("all_gather wrong");
    }
    barrier(ctx);
  });
  EXPECT_RANKS_OK(results);
}

// CLIP-style symmetric contrastive loss over the full batch: logits = a b^T * scale.
torch::Tensor contrastive(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor logits = torch::matmul(a, b.t()) * 3.0;
  const torch::Tensor labels = torch::arange(a.size(0), torch::kLong);
  return 0.5 * (torch::nn::functional::cross_entropy(logits, labels) +
                torch::nn::functional::cross_entropy(logits.t(), labels));
}

TEST(DistCollectivesTest, AllGatherWithGradMatchesSingleProcessBatch) {
  constexpr int kWorld = 2;
  constexpr int64_t kB = 3, kIn = 5, kE = 4;
  torch::manual_seed(7);
  const torch::Tensor x_img = torch::randn({kWorld * kB, kIn}, torch::kDouble);
  const torch::Tensor x_txt = torch::randn({kWorld * kB, kIn}, torch::kDouble);
  const torch::Tensor w_img0 = torch::randn({kE, kIn}, torch::kDouble);
  const torch::Tensor w_txt0 = torch::randn({kE, kIn}, torch::kDouble);

  // Single process on the concatenated batch.
  torch::Tensor w_img = w_img0.clone().requires_grad_();
  torch::Tensor w_txt = w_txt0.clone().requires_grad_();
  torch::Tensor img = torch::matmul(x_img, w_img.t());
  torch::Tensor txt = torch::matmul(x_txt, w_txt.t());
  img.retain_grad();
  contrastive(img, txt).backward();
  const torch::Tensor want_w_img = w_img.grad().clone();
  const torch::Tensor want_w_txt = w_txt.grad().clone();
  const torch::Tensor want_rows = img.grad().clone();

  std::vector<torch::Tensor> got_w_img(kWorld), got_w_txt(kWorld), got_rows(kWorld);
  auto results = run_ranks(kWorld, [&](Context& ctx) {
    const int r = ctx.rank;
    torch::Tensor wi = w_img0.clone().requires_grad_();
    torch::Tensor wt = w_txt0.clone().requires_grad_();
    torch::Tensor local_img = torch::matmul(x_img.narrow(0, r * kB, kB), wi.t());
    torch::Tensor local_txt = torch::matmul(x_txt.narrow(0, r * kB, kB), wt.t());
    local_img.retain_grad();
    // Every rank computes the same global loss on the gathered batch.
    contrastive(all_gather_with_grad(ctx, local_img), all_gather_with_grad(ctx, local_txt))
        .backward();
    got_rows[r] = local_img.grad().clone();
    // Data parallelism averages parameter gradients over ranks (GradSync does this).
    torch::Tensor gi = wi.grad().clone(), gt = wt.grad().clone();
    all_reduce_mean_(ctx, gi);
    all_reduce_mean_(ctx, gt);
    got_w_img[r] = gi;
    got_w_txt[r] = gt;
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_TRUE(tensor_near(got_w_img[r], want_w_img, 1e-10)) << "rank " << r;
    EXPECT_TRUE(tensor_near(got_w_txt[r], want_w_txt, 1e-10)) << "rank " << r;
    // Before averaging, each rank's local rows carry the gradient of the sum of the W
    // identical per-rank losses: W times the single-process row gradient.
    EXPECT_TRUE(tensor_near(got_rows[r] / kWorld, want_rows.narrow(0, r * kB, kB), 1e-10))
        << "rank " << r;
  }
}

TEST(DistCollectivesTest, BroadcastParametersThenCheckIdentical) {
  torch::manual_seed(3);
  torch::nn::Sequential base(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4),
                             torch::nn::Linear(4, 2));
  std::vector<std::string> errors_before(2), errors_after(2);
  std::vector<torch::Tensor> weights(2);
  auto results = run_ranks(2, [&](Context& ctx) {
    auto model = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone());
    if (ctx.rank == 1) {
      torch::NoGradGuard g;
      model->named_parameters()["2.bias"].add_(1.0);
    }
    try {
      check_identical_parameters(*model, ctx);
    } catch (const std::runtime_error& e) {
      errors_before[ctx.rank] = e.what();
    }
    broadcast_parameters(*model, ctx);
    try {
      check_identical_parameters(*model, ctx);
    } catch (const std::runtime_error& e) {
      errors_after[ctx.rank] = e.what();
    }
    weights[ctx.rank] = model->named_parameters()["2.bias"].detach().clone();
  });
  EXPECT_RANKS_OK(results);
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(errors_before[r].find("parameter '2.bias' on rank 1 differs"), std::string::npos)
        << "rank " << r << ": " << errors_before[r];
    EXPECT_EQ(errors_after[r], "") << "rank " << r;
    EXPECT_TRUE(torch::equal(weights[r], base->named_parameters()["2.bias"])) << "rank " << r;
  }
}

// Ranks that normalised different batches: average_buffers leaves each running statistic
// at the mean of the ranks' values and the step counter as it was, on every rank alike.
TEST(DistCollectivesTest, AverageBuffersGivesTheMeanOfRanks) {
  torch::manual_seed(4);
  torch::nn::Sequential base(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4));
  const std::vector<torch::Tensor> inputs = {torch::randn({8, 3}), torch::randn({8, 3}) * 2 + 1};
  auto stats_after_forward = [&](int rank) {
    auto model = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(base->clone());
    model->train();
    model->forward(inputs[rank]);
    return model;
  };
  std::vector<torch::Tensor> mean(2), var(2), count(2);
  std::vector<std::string> errors(2);
  auto results = run_ranks(2, [&](Context& ctx) {
    auto model = stats_after_forward(ctx.rank);
    average_buffers(*model, ctx);
    try {
      check_identical_parameters(*model, ctx);
    } catch (const std::runtime_error& e) {
      errors[ctx.rank] = e.what();
    }
    auto buffers = model->named_buffers();
    mean[ctx.rank] = buffers["1.running_mean"].clone();
    var[ctx.rank] = buffers["1.running_var"].clone();
    count[ctx.rank] = buffers["1.num_batches_tracked"].clone();
  });
  EXPECT_RANKS_OK(results);
  auto a = stats_after_forward(0)->named_buffers(), b = stats_after_forward(1)->named_buffers();
  const auto want_mean = (a["1.running_mean"] + b["1.running_mean"]) / 2;
  const auto want_var = (a["1.running_var"] + b["1.running_var"]) / 2;
  ASSERT_FALSE(torch::allclose(a["1.running_mean"], b["1.running_mean"]));
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(count[r].item<int64_t>(), 1) << "rank " << r;
    EXPECT_TRUE(torch::allclose(mean[r], want_mean, 1e-6, 1e-7)) << "rank " << r;
    EXPECT_TRUE(torch::allclose(var[r], want_var, 1e-6, 1e-7)) << "rank " << r;
  }
}

// Rank 1 joins the group but never enters the all_reduce; rank 0 must get an error
// naming the operation and itself (Gloo's collective timeout, dist.timeout_s = 3)
// instead of hanging. Rank 1 leaves once rank 0 has its answer.
TEST(DistFailureTest, StalledRankMakesCollectiveThrowWithinTimeout) {
  std::promise<void> rank0_done;
  auto rank0_done_f = rank0_done.get_future().share();
  std::string error;
  double seconds = 0.0;
  auto results = run_ranks(
      2,
      [&](Context& ctx) {
        if (ctx.rank == 1) {
          rank0_done_f.wait_for(std::chrono::seconds(60));
          return;
        }
        const auto t0 = std::chrono::steady_clock::now();
        try {
          torch::Tensor t = torch::ones({4});
          all_reduce_mean_(ctx, t);
        } catch (const std::runtime_error& e) {
          error = e.what();
        }
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rank0_done.set_value();
      },
      /*timeout_s=*/3);
  EXPECT_RANKS_OK(results);
  EXPECT_NE(error.find("all_reduce failed on rank 0 of 2"), std::string::npos) << error;
  // Bounded wait, not a speed check: the timeout is 3 s, the watchdog 90 s.
  EXPECT_LT(seconds, 30.0) << error;
  std::cout << "[dist] stalled peer: all_reduce threw after " << seconds << " s: " << error << "\n";
}

// Rank 1 goes away (its group is destroyed, closing its connections) while rank 0 is in
// a collective: rank 0 fails promptly with an error naming the operation.
TEST(DistFailureTest, DeadRankMakesCollectiveThrow) {
  std::string error;
  auto results = run_ranks(
      2,
      [&](Context& ctx) {
        if (ctx.rank == 1) {
          ctx.pg.reset();  // the "process" ends: its sockets close
          ctx.store.reset();
          return;
        }
        try {
          torch::Tensor t = torch::ones({1 << 12});
          for (int i = 0; i < 3; ++i) all_reduce_sum_(ctx, t);
        } catch (const std::runtime_error& e) {
          error = e.what();
        }
      },
      /*timeout_s=*/3);
  EXPECT_RANKS_OK(results);
  EXPECT_NE(error.find("all_reduce failed on rank 0 of 2"), std::string::npos) << error;
  std::cout << "[dist] dead peer: " << error << "\n";
}

}  // namespace
}  // namespace coca::dist
