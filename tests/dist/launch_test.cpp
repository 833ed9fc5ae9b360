// `coca launch`: rank environment, prefixed output, a failing rank stops the others and
// sets the exit code, signals are forwarded. Children are /bin/sh scripts or the coca
// binary; every child sleeps at most a few seconds so nothing can hang the suite.
#include "coca/dist/launch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "test_utils.h"

namespace coca::dist {
namespace {

using coca::testing::TempDir;

int count(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

TEST(LaunchTest, RunsPrefixedCopiesOfCoca) {
  const auto r = coca::testing::run_coca("launch --nproc 2 -- --version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.out, "[rank 0] coca "), 1) << r.out;
  EXPECT_EQ(count(r.out, "[rank 1] coca "), 1) << r.out;
  // Every line is prefixed.
  size_t start = 0;
  while (start < r.out.size()) {
    EXPECT_EQ(r.out.compare(start, 6, "[rank "), 0) << r.out.substr(start, 40);
    start = r.out.find('\n', start);
    if (start == std::string::npos) break;
    ++start;
  }
}

TEST(LaunchTest, FailingChildGivesItsExitCode) {
  const auto r = coca::testing::run_coca("launch --nproc 2 -- train --config /nonexistent.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  // Whichever rank fails first is reported; the launcher may stop the other one before it
  // prints its own error.
  EXPECT_TRUE(r.err.find("[rank 0] error:") != std::string::npos ||
              r.err.find("[rank 1] error:") != std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("exited with code 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/nonexistent.yaml"), std::string::npos) << r.err;
}

TEST(LaunchTest, SetsTheRankEnvironment) {
  TempDir dir;
  LaunchOptions o;
  o.nproc = 3;
  o.master_port = 4321;
  o.executable = "/bin/sh";
  o.args = {"-c",
            "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR "
            "$MASTER_PORT\" > " +
                dir.path().string() + "/env.$RANK"};
  EXPECT_EQ(launch(o), 0);
  for (int r = 0; r < 3; ++r) {
    const std::string got = coca::testing::read_file(dir / ("env." + std::to_string(r)));
    EXPECT_EQ(got, std::to_string(r) + " 3 " + std::to_string(r) + " 3 127.0.0.1 4321\n");
  }
}

// Rank 1 fails at once; rank 0 ignores SIGTERM and would write a marker after 20 s: the
// launcher must SIGKILL it after the grace period, so the marker never appears.
TEST(LaunchTest, FailureStopsTheOthersEvenIfTheyIgnoreSigterm) {
  TempDir dir;
  const std::string marker = (dir / "rank0_finished").string();
  LaunchOptions o;
  o.nproc = 2;
  o.grace_s = 0.3;
  o.executable = "/bin/sh";
  o.args = {"-c",
            "if [ \"$RANK\" = 1 ]; then sleep 0.2; exit 3; fi; trap '' TERM; "
            "i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; touch " +
                marker};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(launch(o), 3);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_LT(s, 15.0);  // bound, not a speed check: unstopped, rank 0 would run 20 s
}

// A SIGTERM to the launcher reaches the children (which then exit by it).
TEST(LaunchTest, ForwardsSigterm) {
  TempDir dir;
  LaunchOptions o;
  o.nproc = 2;
  o.executable = "/bin/sh";
  o.args = {"-c", "touch " + dir.path().string() +
                      "/started.$RANK; "
                      "i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; touch " +
                      dir.path().string() + "/finished.$RANK"};
  std::thread killer([&] {
    for (int i = 0; i < 500; ++i) {
      if (std::filesystem::exists(dir / "started.0") &&
          std::filesystem::exists(dir / "started.1")) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ::kill(::getpid(), SIGTERM);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const int code = launch(o);
  killer.join();
  EXPECT_EQ(code, 128 + SIGTERM);
  EXPECT_FALSE(std::filesystem::exists(dir / "finished.0"));
  EXPECT_FALSE(std::filesystem::exists(dir / "finished.1"));
}

TEST(LaunchTest, RejectsBadOptions) {
  LaunchOptions o;
  o.nproc = 0;
  o.args = {"--version"};
  EXPECT_THROW(launch(o), std::invalid_argument);
  o.nproc = 1;
  o.args.clear();
  EXPECT_THROW(launch(o), std::invalid_argument);
}

}  // namespace
}  // namespace coca::dist
