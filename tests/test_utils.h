// Shared test helpers: seeded fixture, tensor comparison with a useful report, temp
// folders, running the coca binary, and the open_clip reference fixture location.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace coca::testing {

/// The lines of the ConfigError that load_run_config(files, overrides) throws; empty
/// when the config loads.
std::vector<std::string> error_lines(const std::vector<std::string>& files,
                                     const std::vector<std::string>& overrides);

/// Seeds LibTorch before each test.
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

/// Fails with the max abs difference and the first mismatching index when
/// |got - want| > atol + rtol * |want| anywhere (or shapes/dtypes differ).
::testing::AssertionResult tensor_near(const torch::Tensor& got, const torch::Tensor& want,
                                       double atol, double rtol = 0.0);
#define EXPECT_TENSOR_NEAR(got, want, atol, ...) \
  EXPECT_TRUE(::coca::testing::tensor_near((got), (want), (atol), ##__VA_ARGS__))

/// A fresh empty folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Writes `text` to `path` (creating folders).
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};
/// Runs the built `coca` binary with `args` (a shell-quoted string).
CommandResult run_coca(const std::string& args);

/// The folder of open_clip reference fixtures (COCA_REFERENCE_DIR, default
/// ../shared/reference next to the source tree); empty when absent.
std::filesystem::path reference_dir();
#define COCA_REQUIRE_REFERENCE()                                                     \
  do {                                                                               \
    if (::coca::testing::reference_dir().empty())                                    \
      GTEST_SKIP() << "open_clip reference fixtures not found (set COCA_REFERENCE_DIR)"; \
  } while (0)

/// Trains a 48-piece SentencePiece model (`<dir>/spm.model`, returned) on the captions and
/// label prompts of `samples` synthetic samples of stream `seed`: the tokenizer of the tiny
/// training, distributed and evaluation tests.
std::filesystem::path train_synthetic_tokenizer(const std::filesystem::path& dir, int64_t samples,
                                                uint64_t seed);

/// Source tree root (for configs/ and tests/data/).
std::filesystem::path source_dir();

}  // namespace coca::testing
