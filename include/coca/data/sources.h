// Data sources as lists of shards. A shard is the unit of splitting across ranks and
// loader threads and of resuming: a WebDataset tar, or a fixed-size chunk of rows of an
// indexable source (manifest, folder, COCO/Karpathy json, IDX, synthetic). Reading a
// shard yields its samples in a fixed order, so (epoch, shard position, offset) is an
// exact cursor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/data_config.h"
#include "coca/data/sample.h"

namespace coca::data {

/// Identifies one shard of a source.
struct ShardInfo {
  std::string name;     ///< path of the tar, or "<source>[first:last)" for row chunks
  int64_t index = 0;    ///< position in Source::shards()
  int64_t samples = -1; ///< samples in the shard when known without reading it, else -1
};

/// Reads one shard front to back.
class ShardReader {
 public:
  virtual ~ShardReader() = default;
  /// Fills `out` with the next sample and returns true, or returns false at the end.
  /// Bad samples are not returned: they are reported through the skip callback given to
  /// Source::open and reading goes on. A truncated or unreadable shard reports
  /// SkipReason::truncated_shard once and ends.
  virtual bool next(RawSample& out) = 0;
};

/// Called for every skipped sample: (reason, shard name, sample key, detail).
using SkipFn = std::function<void(SkipReason, const std::string&, const std::string&,
                                  const std::string&)>;

class Source {
 public:
  virtual ~Source() = default;
  /// The config this source was built from (name, text kind, fraction ...).
  virtual const SourceConfig& config() const = 0;
  /// Every shard, in a fixed order.
  virtual const std::vector<ShardInfo>& shards() const = 0;
  /// Opens shard `index` for reading. Thread-safe: different threads may read
  /// different shards at once.
  virtual std::unique_ptr<ShardReader> open(int64_t index, const SkipFn& on_skip) const = 0;
  /// Names of each class indexed by label id (a class may have several names), for
  /// zero-shot classifiers; empty when the source has no class list.
  virtual std::vector<std::vector<std::string>> class_names() const { return {}; }
};

/// Builds the source described by `cfg` (throws ConfigError naming `key_path`, e.g.
/// "data.sources.0", on a bad config, and DataError when nothing is readable).
std::unique_ptr<Source> make_source(const SourceConfig& cfg, const std::string& key_path);

/// Expands brace patterns: "a/{00..02}.tar" -> a/00.tar a/01.tar a/02.tar (zero padding
/// kept), "{a,b}" alternatives, several groups per pattern.
std::vector<std::string> expand_braces(const std::string& pattern);

}  // namespace coca::data
