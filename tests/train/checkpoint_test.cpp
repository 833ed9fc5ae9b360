#include <gtest/gtest.h>

#include <fstream>

#include "coca/common/error.h"
#include "coca/train/checkpoint.h"
#include "coca/train/metrics.h"
#include "test_utils.h"

namespace coca::train {
namespace {

using coca::testing::TempDir;
using coca::testing::read_file;
using coca::testing::write_file;
namespace fs = std::filesystem;

void write_payload(const fs::path& dir, const std::string& text) {
  write_file(dir / "model.pt", text);
}

TEST(CheckpointerTest, SavesAtomicallyAndKeepsTheNewest) {
  TempDir tmp;
  Checkpointer ckpt(tmp / "ckpt", 2);
  for (int64_t step : {100, 200, 300}) {
    const auto dir = ckpt.save(step, [&](const fs::path& d) {
      write_payload(d, "weights at " + std::to_string(step));
    });
    EXPECT_EQ(dir.filename().string(), "step_" + std::string(8 - std::to_string(step).size(), '0') +
                                           std::to_string(step));
  }
  const auto all = ckpt.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].step, 200);
  EXPECT_EQ(all[1].step, 300);
  EXPECT_EQ(read_file(all[1].dir / "model.pt"), "weights at 300");
  EXPECT_NO_THROW(check_checkpoint_format(all[1].dir));
  EXPECT_EQ(resolve_checkpoint(tmp / "ckpt"), all[1].dir);
  EXPECT_EQ(resolve_checkpoint(all[0].dir), all[0].dir);
}

TEST(CheckpointerTest, AFailedWriteLeavesThePreviousCheckpointIntact) {
  TempDir tmp;
  Checkpointer ckpt(tmp / "ckpt", 3);
  ckpt.save(10, [](const fs::path& d) { write_payload(d, "good"); });
  EXPECT_THROW(ckpt.save(20,
                         [](const fs::path& d) {
                           write_payload(d, "half");
                           throw std::runtime_error("killed mid-write");
                         }),
               std::runtime_error);
  // The interrupted save is invisible: no step_20, the newest is still step 10.
  ASSERT_TRUE(ckpt.latest().has_value());
  EXPECT_EQ(ckpt.latest()->step, 10);
  EXPECT_EQ(read_file(ckpt.latest()->dir / "model.pt"), "good");
  // Its temporary folder is cleaned up by the next save.
  ckpt.save(30, [](const fs::path& d) { write_payload(d, "next"); });
  for (const auto& e : fs::directory_iterator(tmp / "ckpt")) {
    EXPECT_EQ(e.path().filename().string().rfind("step_", 0), 0u) << e.path();
  }
}

TEST(CheckpointerTest, IncompleteOrForeignFoldersAreRejected) {
  TempDir tmp;
  fs::create_directories(tmp / "ckpt" / "step_00000005");  // no format file: incomplete
  Checkpointer ckpt(tmp / "ckpt", 1);
  EXPECT_FALSE(ckpt.latest().has_value());
  EXPECT_THROW(resolve_checkpoint(tmp / "ckpt"), IoError);
  write_file(tmp / "ckpt" / "step_00000005" / "format", "coca-checkpoint 99\n");
  EXPECT_THROW(check_checkpoint_format(tmp / "ckpt" / "step_00000005"), IoError);
  try {
    check_checkpoint_format(tmp / "ckpt" / "step_00000005");
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
}

TEST(CheckpointerTest, SavingTheSameStepAgainReplacesIt) {
  TempDir tmp;
  Checkpointer ckpt(tmp / "ckpt", 2);
  ckpt.save(7, [](const fs::path& d) { write_payload(d, "first"); });
  ckpt.save(7, [](const fs::path& d) { write_payload(d, "second"); });
  ASSERT_EQ(ckpt.list().size(), 1u);
  EXPECT_EQ(read_file(ckpt.latest()->dir / "model.pt"), "second");
}

TEST(MetricsLoggerTest, WritesJsonLinesAndTruncatesForResume) {
  TempDir tmp;
  const auto path = tmp / "run" / "metrics.jsonl";
  {
    MetricsLogger log(path, true);
    log.write(1, "train", {{"loss", 2.5}, {"lr", 1e-3}});
    log.write(2, "train", {{"loss", std::nan("")}});
    log.write(3, "eval", {{"top1", 0.5}});
  }
  EXPECT_EQ(read_file(path),
            "{\"step\":1,\"kind\":\"train\",\"loss\":2.5,\"lr\":0.001}\n"
            "{\"step\":2,\"kind\":\"train\",\"loss\":null}\n"
            "{\"step\":3,\"kind\":\"eval\",\"top1\":0.5}\n");
  MetricsLogger resumed(path, true);
  resumed.truncate_after(2);
  resumed.write(3, "train", {{"loss", 1.0}});
  EXPECT_EQ(read_file(path),
            "{\"step\":1,\"kind\":\"train\",\"loss\":2.5,\"lr\":0.001}\n"
            "{\"step\":2,\"kind\":\"train\",\"loss\":null}\n"
            "{\"step\":3,\"kind\":\"train\",\"loss\":1.0}\n");
  MetricsLogger disabled(tmp / "other.jsonl", false);
  disabled.write(1, "train", {{"loss", 1.0}});
  EXPECT_FALSE(fs::exists(tmp / "other.jsonl"));
}

TEST(MetricsLoggerTest, FormatsDurations) {
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace coca::train

#include "coca/train/train_state.h"

namespace coca::train {
namespace {

TEST(TrainStateTest, SavesAndLoadsEveryField) {
  coca::testing::TempDir tmp;
  TrainState s;
  s.step = 42;
  s.batches = 44;
  s.samples_seen = 44 * 64;
  s.skipped_steps = 2;
  s.world_size = 2;
  s.seed = 18446744073709551615ull;
  s.data_cursor = "v1 rank=0 world=2 batches=44 sources=1 s0=epoch:0,shard:3,offset:7";
  s.rank_cursors = {"v1 rank=1 world=2 batches=44 sources=1 s0=epoch:0,shard:2,offset:5"};
  s.save(tmp / "train_state.yaml");
  const TrainState t = TrainState::load(tmp / "train_state.yaml");
  EXPECT_EQ(t.step, 42);
  EXPECT_EQ(t.batches, 44);
  EXPECT_EQ(t.samples_seen, 44 * 64);
  EXPECT_EQ(t.skipped_steps, 2);
  EXPECT_EQ(t.world_size, 2);
  EXPECT_EQ(t.seed, s.seed);
  EXPECT_EQ(t.data_cursor, s.data_cursor);
  EXPECT_EQ(t.rank_cursors, s.rank_cursors);
  EXPECT_EQ(t.cursor_of(1), s.rank_cursors[0]);
  // A two-rank state needs the cursor of rank 1.
  s.rank_cursors.clear();
  s.save(tmp / "one_cursor.yaml");
  EXPECT_THROW(TrainState::load(tmp / "one_cursor.yaml"), IoError);
  coca::testing::write_file(tmp / "bad.yaml", "step: many\n");
  EXPECT_THROW(TrainState::load(tmp / "bad.yaml"), IoError);
  EXPECT_THROW(TrainState::load(tmp / "missing.yaml"), IoError);
}

}  // namespace
}  // namespace coca::train

#include <sys/wait.h>
#include <unistd.h>

namespace coca::train {
namespace {

TEST(CheckpointerTest, SurvivesSigkillDuringAWrite) {
  coca::testing::TempDir tmp;
  const auto root = tmp / "ckpt";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: the second save is killed (SIGKILL) after its files are written.
    ::setenv("COCA_FAULT_INJECT", "checkpoint_write:2", 1);
    Checkpointer ckpt(root, 3);
    ckpt.save(1, [](const std::filesystem::path& d) { coca::testing::write_file(d / "model.pt", "one"); });
    ckpt.save(2, [](const std::filesystem::path& d) { coca::testing::write_file(d / "model.pt", "two"); });
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  Checkpointer ckpt(root, 3);
  ASSERT_TRUE(ckpt.latest().has_value());
  EXPECT_EQ(ckpt.latest()->step, 1);
  EXPECT_EQ(coca::testing::read_file(ckpt.latest()->dir / "model.pt"), "one");
  EXPECT_NO_THROW(check_checkpoint_format(ckpt.latest()->dir));
}

}  // namespace
}  // namespace coca::train
