// Atomic, versioned checkpoint folders: <dir>/step_00000500/{model.pt, optim.pt,
// train_state.yaml, config.yaml, ...}. A checkpoint is written into a temporary folder,
// flushed to disk and renamed into place, so a kill at any moment leaves the previous
// checkpoints intact; only the newest `keep` are kept.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace coca::train {

/// Written into every checkpoint folder and checked on load.
inline constexpr const char* kCheckpointFormat = "coca-checkpoint";
inline constexpr int kCheckpointVersion = 1;

struct CheckpointInfo {
  std::filesystem::path dir;  ///< the checkpoint folder
  int64_t step = 0;           ///< optimizer steps completed when it was written
};

class Checkpointer {
 public:
  /// `root`: folder holding step_* checkpoints; `keep`: newest k kept (>= 1).
  Checkpointer(std::filesystem::path root, int64_t keep);

  /// Creates a temporary folder, calls `write(tmp)` to fill it, adds the format file,
  /// syncs every file, renames it to step_<step> (replacing an older one of the same
  /// step) and removes checkpoints beyond `keep`. Returns the final folder.
  std::filesystem::path save(int64_t step,
                             const std::function<void(const std::filesystem::path&)>& write);

  /// Complete checkpoints, oldest first (temporary and foreign folders ignored).
  std::vector<CheckpointInfo> list() const;
  /// The newest complete checkpoint, if any.
  std::optional<CheckpointInfo> latest() const;
  /// Removes temporary folders left by an interrupted save.
  void remove_stale_temporaries() const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  int64_t keep_;
};

/// Throws IoError unless `dir` is a complete checkpoint of a supported format version.
void check_checkpoint_format(const std::filesystem::path& dir);

/// Resolves `spec` (a checkpoint folder, or a folder of step_* checkpoints, whose newest
/// is taken) to a checkpoint folder; throws IoError naming `spec` when there is none.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& spec);

}  // namespace coca::train
