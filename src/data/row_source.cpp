// RowSource (shards of rows) and the helpers the indexable sources share.
#include "data/detail/row_source.h"

#include <archive.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "coca/common/error.h"
#include "coca/data/class_names.h"
#include "data/detail/shuffle.h"

namespace coca::data::detail {

namespace {

/// Fixed seed of the row-to-shard permutation: shard contents never depend on data.seed,
/// so a cursor stays valid when only the shuffle seed changes.
constexpr uint64_t kRowOrderSeed = 0xC0CAC0CA2205ULL;

class RowShardReader : public ShardReader {
 public:
  RowShardReader(const RowSource& source, const ShardInfo& shard, int64_t first, int64_t last,
                 SkipFn on_skip)
      : source_(source), shard_(shard.name), pos_(first), last_(last),
        on_skip_(std::move(on_skip)) {}

  bool next(RawSample& out) override {
    while (pos_ < last_) {
      const int64_t row = source_.row_at(pos_++);
      out = RawSample{};
      if (source_.read_row(row, out, on_skip_, shard_)) return true;
    }
    return false;
  }

 private:
  const RowSource& source_;
  std::string shard_;
  int64_t pos_;
  int64_t last_;
  SkipFn on_skip_;
};

}  // namespace

std::unique_ptr<ShardReader> RowSource::open(int64_t index, const SkipFn& on_skip) const {
  if (index < 0 || index >= static_cast<int64_t>(shards_.size())) {
    throw std::out_of_range(fmt::format("{}: shard {} out of range (source has {} shards)",
                                        source_name(config_), index, shards_.size()));
  }
  const int64_t first = index * kRowsPerShard;
  const int64_t last = std::min(first + kRowsPerShard, rows());
  return std::make_unique<RowShardReader>(*this, shards_[static_cast<size_t>(index)], first,
                                          last, on_skip ? on_skip : SkipFn([](auto&&...) {}));
}

void RowSource::finish_rows(int64_t rows, const std::string& key_path) {
  if (config_.samples > 0) rows = std::min(rows, config_.samples);
  if (rows == 0) {
    throw DataError(config_.path, "",
                    fmt::format("{} ({}): {} source has no samples", key_path,
                                source_name(config_), config_.type));
  }
  order_ = shuffled_indices(rows, kRowOrderSeed);
  const std::string name = source_name(config_);
  for (int64_t first = 0, i = 0; first < rows; first += kRowsPerShard, ++i) {
    const int64_t last = std::min(first + kRowsPerShard, rows);
    shards_.push_back(ShardInfo{fmt::format("{}[{}:{})", name, first, last), i, last - first});
  }
}

std::string source_name(const SourceConfig& cfg) {
  return cfg.name.empty() ? cfg.type : cfg.name;
}

bool read_file_bytes(const std::filesystem::path& path, std::vector<uint8_t>& out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff size = in.tellg();
  if (size < 0) return false;
  out.resize(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(out.data()), size)) return false;
  return true;
}

std::vector<uint8_t> read_maybe_gzip(const std::filesystem::path& path) {
  std::vector<uint8_t> bytes;
  if (!read_file_bytes(path, bytes)) throw IoError(path.string(), "cannot open file");
  if (bytes.size() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;
  // gzip: libarchive's "raw" format with the gzip filter yields the decompressed stream.
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_raw(a);
  std::vector<uint8_t> out;
  std::string error;
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    error = archive_error_string(a) ? archive_error_string(a) : "cannot open gzip stream";
  } else {
    archive_entry* entry = nullptr;
    if (archive_read_next_header(a, &entry) != ARCHIVE_OK) {
      error = archive_error_string(a) ? archive_error_string(a) : "no gzip member";
    } else {
      uint8_t buf[1 << 16];
      for (;;) {
        const la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
        if (n < 0) {
          error = archive_error_string(a) ? archive_error_string(a) : "gzip read error";
          break;
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
      }
    }
  }
  archive_read_free(a);
  if (!error.empty()) throw IoError(path.string(), "corrupt gzip data: " + error);
  return out;
}

std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& rel) {
  std::filesystem::path p(rel);
  return p.is_absolute() ? p : base / p;
}

std::filesystem::path image_root(const SourceConfig& cfg) {
  if (!cfg.image_root.empty()) return std::filesystem::path(cfg.image_root);
  return std::filesystem::path(cfg.path).parent_path();
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

namespace {

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    part = trim(part);
    if (!part.empty()) names.push_back(part);
  }
  return names;
}

}  // namespace

std::vector<std::vector<std::string>> read_class_names(const std::string& file,
                                                       const std::vector<std::string>& ids,
                                                       const std::string& key_path) {
  std::ifstream in(file);
  if (!in) {
    throw ConfigError(fmt::format("{}.class_names: cannot open class-names file '{}'", key_path,
                                  file));
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (!line.empty()) lines.push_back(line);
  }
  const std::set<std::string> known(ids.begin(), ids.end());
  bool all_tab = !lines.empty();
  bool all_known_word = !lines.empty();
  for (const auto& line : lines) {
    if (line.find('\t') == std::string::npos) all_tab = false;
    const size_t sp = line.find_first_of(" \t");
    if (sp == std::string::npos || !known.count(line.substr(0, sp))) all_known_word = false;
  }
  std::vector<std::vector<std::string>> out;
  if (all_tab || all_known_word) {
    std::map<std::string, std::vector<std::string>> by_id;
    for (const auto& line : lines) {
      const size_t sp = all_tab ? line.find('\t') : line.find_first_of(" \t");
      by_id[trim(line.substr(0, sp))] = split_names(line.substr(sp + 1));
    }
    for (const auto& id : ids) {
      auto it = by_id.find(id);
      if (it == by_id.end() || it->second.empty()) {
        throw ConfigError(fmt::format("{}.class_names: class '{}' has no entry in '{}'",
                                      key_path, id, file));
      }
      out.push_back(it->second);
    }
    return out;
  }
  if (lines.size() != ids.size()) {
    throw ConfigError(fmt::format(
        "{}.class_names: '{}' lists {} classes one per line, but the source has {} classes; "
        "use `id<TAB>name` lines to name a subset",
        key_path, file, lines.size(), ids.size()));
  }
  for (const auto& line : lines) out.push_back(split_names(line));
  return out;
}

}  // namespace coca::data::detail

namespace coca::data {

std::vector<std::vector<std::string>> source_class_names(const Source& source) {
  return source.class_names();
}

}  // namespace coca::data
