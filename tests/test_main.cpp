// Test entry point: fixes the thread environment (as the coca binary does), seeds
// LibTorch, and filters out *_CUDA tests when no GPU is present.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <string>

#include "coca/common/logging.h"
#include "coca/common/runtime.h"

int main(int argc, char** argv) {
  coca::runtime::ensure_thread_environment(argv, 0);
  coca::runtime::apply_thread_settings();
  coca::runtime::ignore_broken_pipes();
  ::testing::InitGoogleTest(&argc, argv);
  if (!torch::cuda::is_available()) {
    std::string filter = ::testing::GTEST_FLAG(filter);
    filter += (filter.find('-') == std::string::npos ? "-" : ":");
    filter += "*_CUDA:*_CUDA/*";
    ::testing::GTEST_FLAG(filter) = filter;
  }
  coca::log::set_level(coca::log::Level::warn);
  torch::manual_seed(0);
  return RUN_ALL_TESTS();
}
