// Shared base of the indexable sources: a list of rows split into shards of
// kRowsPerShard rows named "<source>[first:last)". Rows are put into shards in a fixed
// pseudo-random order (independent of data.seed), so a shard of a class-sorted folder
// mixes classes; a shard always yields its rows in the same order, which makes
// (shard, offset) an exact cursor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/sources.h"

namespace coca::data::detail {

/// Rows per shard of an indexable source.
constexpr int64_t kRowsPerShard = 512;

class RowSource : public Source {
 public:
  const SourceConfig& config() const override { return config_; }
  const std::vector<ShardInfo>& shards() const override { return shards_; }
  std::unique_ptr<ShardReader> open(int64_t index, const SkipFn& on_skip) const override;

  /// Number of rows (after the `samples` cap).
  int64_t rows() const { return static_cast<int64_t>(order_.size()); }
  /// Row stored at position `pos` of the shuffled row order.
  int64_t row_at(int64_t pos) const { return order_.at(static_cast<size_t>(pos)); }

  /// Fills `out` with row `row` (index into the derived class's own table) and returns
  /// true, or calls `on_skip(reason, shard, key, detail)` and returns false.
  virtual bool read_row(int64_t row, RawSample& out, const SkipFn& on_skip,
                        const std::string& shard) const = 0;

 protected:
  explicit RowSource(SourceConfig cfg) : config_(std::move(cfg)) {}
  /// Called by the derived constructor once the row table is complete: applies the
  /// `samples` cap (first N rows of the table), shuffles the row order and cuts shards.
  /// Throws DataError when there are no rows.
  void finish_rows(int64_t rows, const std::string& key_path);

  SourceConfig config_;

 private:
  std::vector<int64_t> order_;
  std::vector<ShardInfo> shards_;
};

/// Name used in logs: SourceConfig::name, or its type when empty.
std::string source_name(const SourceConfig& cfg);

/// Whole file as bytes; false when it cannot be opened or read.
bool read_file_bytes(const std::filesystem::path& path, std::vector<uint8_t>& out);

/// Reads a file, transparently gunzipping it when it starts with the gzip magic.
/// Throws IoError naming the file.
std::vector<uint8_t> read_maybe_gzip(const std::filesystem::path& path);

/// `rel` resolved against `base` unless it is absolute.
std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& rel);

/// Folder holding the source's images: SourceConfig::image_root when set, else the folder
/// of `path` (manifest or json).
std::filesystem::path image_root(const SourceConfig& cfg);

/// Class-names file. Three layouts, detected from the file:
///  1. `id<TAB>name[, name...]` on every line (ids are folder names or label numbers);
///  2. `id name[, name...]` where the first word of every line is a known id
///     (ImageNet's LOC_synset_mapping.txt);
///  3. otherwise one class per line, in sorted-id order (line i = class i).
/// Names are split at commas and trimmed. Returns one entry per id of `ids` (in order);
/// an id missing from layouts 1-2, or a line count different from ids.size() in layout
/// 3, throws ConfigError naming `key_path` and the file.
std::vector<std::vector<std::string>> read_class_names(const std::string& file,
                                                       const std::vector<std::string>& ids,
                                                       const std::string& key_path);

/// Trims spaces, tabs and CR/LF at both ends.
std::string trim(const std::string& s);

}  // namespace coca::data::detail
