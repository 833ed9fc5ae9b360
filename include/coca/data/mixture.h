// Source mixing: every batch holds a fixed quota of each source (the paper mixes JFT-3B
// and ALIGN in each batch, CoCa arXiv 2205.01917 §4.1), and each source is read as a
// deterministic stream split across ranks. Also the resumable cursor of those streams.
// No torch include: the trainer's state header can use DataCursor cheaply.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/sources.h"

namespace coca::data {

/// Samples of each source per batch: the fractions are normalised to 1, multiplied by
/// `batch_size`, floored, and the samples left over go to the largest remainders (ties to
/// the earlier source). 0.5/0.5 of 64 -> 32/32; 1/3 each of 64 -> 22/21/21.
/// Throws std::invalid_argument on an empty list, a fraction <= 0 or batch_size < 1.
std::vector<int64_t> mixture_quotas(const std::vector<double>& fractions, int64_t batch_size);

/// Where one source's stream stands on one rank: enough to continue exactly.
struct SourceCursor {
  int64_t epoch = 0;        ///< current epoch of this rank's stream (0-based)
  int64_t shard = 0;        ///< position in this epoch's shard order of this rank
  int64_t offset = 0;       ///< samples the open shard's reader has yielded so far
  int64_t position = 0;     ///< samples read in this epoch by every rank's rule (see SourceStream)
  int64_t drawn = 0;        ///< samples this rank's stream returned in total
  int64_t drawn_epoch = 0;  ///< samples this rank's stream returned in this epoch
  int64_t readable = 0;     ///< of those, samples that decoded (maintained by the Loader)
  int64_t samples = 0;      ///< samples put into batches in total (maintained by the Loader)
};

/// Position of a Loader: one SourceCursor per source, valid for one (rank, world_size).
/// Each rank has its own cursor; a trainer stores all of them to resume every rank.
struct DataCursor {
  int rank = 0;
  int world_size = 1;
  int64_t batches = 0;                ///< batches returned so far
  std::vector<SourceCursor> sources;  ///< empty = start of the run

  /// One line of `key=value` words, e.g.
  /// `v1 rank=0 world=1 batches=3 sources=1 s0=epoch:0,shard:1,offset:4,position:...`.
  std::string to_string() const;
  /// Inverse of to_string(); throws std::invalid_argument naming the bad word.
  static DataCursor parse(const std::string& text);
};

/// One source read as an endless sequence of samples for one rank. Epoch e visits every
/// shard once in an order shuffled with (seed, source_index, e); each shard is read front
/// to back. Ranks split the data without overlap:
///  - shard split (the source has at least world_size shards): rank r reads the shards at
///    positions r, r + world_size, ... of the epoch's order;
///  - sample split (fewer shards than ranks): every rank reads every shard and keeps the
///    samples whose position in the epoch is r modulo world_size.
/// The sequence depends only on (source, seed, source_index, rank, world_size).
class SourceStream {
 public:
  SourceStream(std::shared_ptr<const Source> source, int64_t source_index, uint64_t seed,
               int rank, int world_size, const SourceCursor& start = {});
  // The open reader calls back into this object: it is neither copied nor moved.
  SourceStream(const SourceStream&) = delete;
  SourceStream& operator=(const SourceStream&) = delete;

  /// Fills `out` with the next sample of this rank, moving to the next epoch when the
  /// shards are used up. The readers' skipped samples go to `on_skip` (in sample split,
  /// only rank 0 reports them, so counts add up across ranks). Throws DataError naming
  /// the source when a whole epoch gives this rank no sample at all.
  void next(RawSample& out, const SkipFn& on_skip);

  /// Position after the last sample returned (readable and samples left at 0).
  const SourceCursor& cursor() const { return cursor_; }
  /// Shard (index into Source::shards()) and reader offset of the last sample returned.
  int64_t last_shard() const { return last_shard_; }
  int64_t last_offset() const { return last_offset_; }
  /// Shard indices this rank reads in `epoch`, in reading order.
  std::vector<int64_t> shard_order(int64_t epoch) const;
  /// True when ranks split this source by sample position (fewer shards than ranks).
  bool splits_samples() const { return split_samples_; }
  const Source& source() const { return *source_; }

 private:
  std::shared_ptr<const Source> source_;
  int64_t source_index_;
  uint64_t seed_;
  int rank_;
  int world_size_;
  bool split_samples_;
  SourceCursor cursor_;
  std::vector<int64_t> order_;  ///< shard order of cursor_.epoch
  std::unique_ptr<ShardReader> reader_;
  int64_t last_shard_ = -1;
  int64_t last_offset_ = -1;
  const SkipFn* current_skip_ = nullptr;  ///< callback of the next() call in progress
  bool replaying_ = false;                ///< skipping samples taken before a resume
};

}  // namespace coca::data
