// One training batch as the loader hands it to the trainer.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace coca::data {

/// Samples of a batch are grouped by source: first the quota of source 0, then source 1...
/// (the losses are invariant to the order). Tensors are contiguous, in pinned memory
/// when CUDA is available, so `.to(device, /*non_blocking=*/true)` overlaps the copy.
struct Batch {
  torch::Tensor images;  ///< [B, C, S, S] float, as the image transform returns them
  torch::Tensor text;    ///< [B, T] int64 token ids
  std::vector<int64_t> source_index;  ///< [B] index into DataConfig::sources
  std::vector<std::string> keys;      ///< [B] sample keys (for messages)
  std::vector<std::string> texts;     ///< [B] the text before tokenisation
  std::vector<std::vector<std::string>> labels;  ///< [B] label names (empty for captions)
  std::vector<std::vector<int64_t>> label_ids;   ///< [B] label ids (empty for captions)
  int64_t index = 0;  ///< number of batches before this one in the run (resumes included)

  int64_t size() const { return static_cast<int64_t>(keys.size()); }
};

}  // namespace coca::data
