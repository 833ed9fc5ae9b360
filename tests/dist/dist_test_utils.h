// Runs a function on W ranks, each a thread of the test process with its own TCPStore
// client and Gloo group on 127.0.0.1 (rank 0 hosts the store). A watchdog aborts the
// test binary rather than letting a broken collective hang the suite.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "coca/dist/context.h"

namespace coca::testing {

struct RankResult {
  std::string error;  ///< what() of the exception the rank threw, empty if none
};

/// Runs fn(ctx) on `world` ranks; returns each rank's outcome. Aborts after
/// `watchdog_s` seconds (a hang is a bug: Gloo's timeout should have fired).
inline std::vector<RankResult> run_ranks(int world, const std::function<void(dist::Context&)>& fn,
                                         int64_t timeout_s = 20, int watchdog_s = 90) {
  dist::DistConfig cfg;
  cfg.backend = "gloo";
  cfg.timeout_s = timeout_s;
  const int port = dist::find_free_port();
  std::vector<RankResult> results(static_cast<size_t>(world));
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        dist::LaunchEnv env;
        env.rank = r;
        env.world_size = world;
        env.local_rank = r;
        env.local_world_size = world;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        env.source = "test";
        dist::Context ctx = dist::init_distributed(cfg, env);
        fn(ctx);
      } catch (const std::exception& e) {
        results[static_cast<size_t>(r)].error = e.what();
      }
      ++done;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(watchdog_s);
  while (done.load() < world) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "run_ranks: ranks still running after %d s; aborting\n", watchdog_s);
      std::abort();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& t : threads) t.join();
  return results;
}

#define EXPECT_RANKS_OK(results)                   \
  for (size_t r_ = 0; r_ < (results).size(); ++r_) \
  EXPECT_EQ((results)[r_].error, "") << "rank " << r_ << " threw"

}  // namespace coca::testing
