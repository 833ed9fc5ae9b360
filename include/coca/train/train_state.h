// TrainState: where a run stands, saved as train_state.yaml in every checkpoint so a run
// resumes exactly where it stopped (with the model, optimizer and RNG files beside it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace coca::train {

struct TrainState {
  int64_t step = 0;            ///< optimizer steps completed
  int64_t batches = 0;         ///< batches consumed (steps + skipped non-finite steps)
  int64_t samples_seen = 0;    ///< samples consumed on all ranks
  int64_t skipped_steps = 0;   ///< non-finite steps skipped in total
  int64_t world_size = 1;      ///< ranks of the run that wrote it
  uint64_t seed = 0;           ///< train.seed of the run
  std::string data_cursor;     ///< data::DataCursor::to_string() of rank 0's loader
  /// Cursors of ranks 1..world_size-1 (keys data_cursor_rank<r>); empty for one rank.
  std::vector<std::string> rank_cursors;

  /// The cursor of `rank` (data_cursor for 0); throws std::out_of_range for a rank
  /// this state has no cursor of.
  const std::string& cursor_of(int rank) const;

  void save(const std::filesystem::path& file) const;
  /// Throws IoError/ConfigError naming the file on a missing file or a bad value, or
  /// when the per-rank cursors do not match world_size.
  static TrainState load(const std::filesystem::path& file);
};

}  // namespace coca::train
