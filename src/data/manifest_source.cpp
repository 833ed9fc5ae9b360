// Manifest source: a TSV/CSV file with a header row naming its columns (open_clip's
// CsvDataset layout: `filepath<TAB>title`). Fields may be quoted as in RFC 4180
// ("a, b" and "say ""hi""", quoted newlines included), whatever the separator. Image
// paths are relative to source.image_root, or to the manifest's folder when it is empty.
// With source.label_column set, each row also has one class label (an id of the
// class_names file, or any value when there is none), so captions and labels come together.
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "coca/common/error.h"
#include "data/detail/source_factories.h"
#include "data/detail/row_source.h"

namespace coca::data::detail {

namespace {

struct Record {
  std::vector<std::string> fields;
  int64_t line = 0;  ///< 1-based line where the record starts
};

/// Streams the records of `in` to `on_record`, one at a time (a manifest can hold
/// millions of rows; only the two columns used are kept). Throws DataError on an
/// unterminated quote.
template <class F>
void parse_delimited(std::istream& in, char sep, const std::string& file, F&& on_record) {
  Record rec;
  std::string field;
  bool in_quotes = false;
  bool quote_seen = false;     // in quotes, a '"' that closes or starts a "" escape
  bool field_started = false;  // the current field has content or was quoted
  int64_t line = 1;
  int64_t quote_line = 0;
  rec.line = 1;
  auto end_field = [&] {
    if (!field.empty() && field.back() == '\r') field.pop_back();
    rec.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    // A blank line is no record.
    if (!(rec.fields.size() == 1 && rec.fields[0].empty())) on_record(std::move(rec));
    rec = Record{};
    rec.line = line;
  };
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      const char c = buf[i];
      if (quote_seen) {
        quote_seen = false;
        if (c == '"') {
          field.push_back('"');
          continue;
        }
        in_quotes = false;  // that quote closed the field; `c` is read normally below
      } else if (in_quotes) {
        if (c == '"') {
          quote_seen = true;
        } else {
          if (c == '\n') ++line;
          field.push_back(c);
        }
        continue;
      }
      if (c == '"' && !field_started) {
        in_quotes = true;
        field_started = true;
        quote_line = line;
      } else if (c == sep) {
        end_field();
      } else if (c == '\n') {
        ++line;
        end_record();
      } else {
        field.push_back(c);
        field_started = true;
      }
    }
  }
  if (in_quotes && !quote_seen) {
    throw DataError(file, "", fmt::format("line {}: quoted field is never closed", quote_line));
  }
  if (field_started || !field.empty() || !rec.fields.empty()) end_record();
}

class ManifestSource : public RowSource {
 public:
  ManifestSource(const SourceConfig& cfg, const std::string& key_path) : RowSource(cfg) {
    if (cfg.text != "caption" && cfg.label_column.empty()) {
      throw ConfigError(fmt::format(
          "{}.text: this manifest source has captions, not labels (no label_column); use "
          "text: caption",
          key_path));
    }
    if (cfg.separator.size() != 1) {
      throw ConfigError(fmt::format(
          "{}.separator: expected one character (\"\\t\" or \",\"), got '{}'", key_path,
          cfg.separator));
    }
    std::ifstream in(cfg.path, std::ios::binary);
    if (!in) {
      throw ConfigError(fmt::format("{}.path: cannot open manifest '{}'", key_path, cfg.path));
    }
    root_ = image_root(cfg);
    bool header = true;
    parse_delimited(in, cfg.separator[0], cfg.path, [&](Record&& rec) {
      if (header) {
        header = false;
        file_col_ = column(rec.fields, cfg.filepath_column, "filepath_column", key_path);
        title_col_ = column(rec.fields, cfg.title_column, "title_column", key_path);
        last_col_ = std::max(file_col_, title_col_);
        if (!cfg.label_column.empty()) {
          label_col_ = column(rec.fields, cfg.label_column, "label_column", key_path);
          last_col_ = std::max(last_col_, label_col_);
        }
        return;
      }
      Row row;
      row.line = rec.line;
      row.fields = static_cast<int64_t>(rec.fields.size());
      if (rec.fields.size() > last_col_) {
        row.file = std::move(rec.fields[file_col_]);
        row.title = std::move(rec.fields[title_col_]);
        if (!cfg.label_column.empty()) row.label = trim(rec.fields[label_col_]);
      }
      rows_.push_back(std::move(row));
    });
    if (header) throw DataError(cfg.path, "", "manifest is empty (no header row)");
    if (!cfg.label_column.empty()) init_classes(key_path);
    finish_rows(static_cast<int64_t>(rows_.size()), key_path);
  }

  bool read_row(int64_t row, RawSample& out, const SkipFn& on_skip,
                const std::string& shard) const override {
    const Row& rec = rows_[static_cast<size_t>(row)];
    if (rec.fields <= static_cast<int64_t>(last_col_)) {
      on_skip(SkipReason::other, shard, fmt::format("{}:{}", config_.path, rec.line),
              fmt::format("line has {} fields, the header has more", rec.fields));
      return false;
    }
    const std::string& file = rec.file;
    out.key = file;
    out.image_name = file;
    const std::string caption = trim(rec.title);
    if (caption.empty()) {
      on_skip(SkipReason::empty_text, shard, file, fmt::format("empty caption (line {})", rec.line));
      return false;
    }
    const std::filesystem::path path = resolve_path(root_, file);
    if (file.empty() || !read_file_bytes(path, out.image_bytes)) {
      on_skip(SkipReason::missing_file, shard, file,
              fmt::format("cannot read image '{}' (line {})", path.string(), rec.line));
      return false;
    }
    if (!config_.label_column.empty()) {
      const auto it = class_index_.find(rec.label);
      if (it == class_index_.end()) {
        on_skip(SkipReason::other, shard, file,
                fmt::format("label '{}' (line {}) is not a class of '{}'", rec.label, rec.line,
                            config_.class_names));
        return false;
      }
      out.label_ids = {it->second};
      out.labels = class_names_[static_cast<size_t>(it->second)];
    }
    out.captions.push_back(caption);
    return true;
  }

  std::vector<std::vector<std::string>> class_names() const override { return class_names_; }

 private:
  /// The columns used of one manifest line.
  struct Row {
    std::string file;
    std::string title;
    std::string label;  ///< class id, when label_column is set
    int64_t line = 0;
    int64_t fields = 0;  ///< fields on the line (too few: skipped as `other`)
  };

  size_t column(const std::vector<std::string>& header, const std::string& want,
                const char* key, const std::string& key_path) const {
    for (size_t i = 0; i < header.size(); ++i) {
      if (trim(header[i]) == want) return i;
    }
    std::string found;
    for (const auto& h : header) found += (found.empty() ? "'" : ", '") + h + "'";
    throw ConfigError(fmt::format("{}.{}: column '{}' not in the header of '{}' (found {})",
                                  key_path, key, want, config_.path, found));
  }

  /// Class ids: the class_names file's ids in its order (`id<TAB>name` lines, or one name
  /// per line that is also its id), else the sorted distinct labels of the rows.
  void init_classes(const std::string& key_path) {
    std::vector<std::string> ids;
    if (!config_.class_names.empty()) {
      std::ifstream in(config_.class_names);
      if (!in) {
        throw ConfigError(fmt::format("{}.class_names: cannot open class-names file '{}'",
                                      key_path, config_.class_names));
      }
      for (std::string line; std::getline(in, line);) {
        line = trim(line);
        if (!line.empty()) ids.push_back(trim(line.substr(0, line.find('\t'))));
      }
      if (ids.empty()) {
        throw ConfigError(fmt::format("{}.class_names: '{}' lists no classes", key_path,
                                      config_.class_names));
      }
      class_names_ = read_class_names(config_.class_names, ids, key_path);
    } else {
      std::set<std::string> seen;
      for (const auto& row : rows_) {
        if (!row.label.empty()) seen.insert(row.label);
      }
      ids.assign(seen.begin(), seen.end());
      for (const auto& id : ids) class_names_.push_back({id});
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!class_index_.emplace(ids[i], static_cast<int64_t>(i)).second) {
        throw ConfigError(fmt::format("{}.class_names: class '{}' is listed twice in '{}'",
                                      key_path, ids[i], config_.class_names));
      }
    }
  }

  std::vector<Row> rows_;
  size_t file_col_ = 0;
  size_t title_col_ = 0;
  size_t label_col_ = 0;
  size_t last_col_ = 0;  ///< highest column index used
  std::map<std::string, int64_t> class_index_;  ///< class id -> label id
  std::vector<std::vector<std::string>> class_names_;
  std::filesystem::path root_;
};

}  // namespace

std::unique_ptr<Source> make_manifest_source(const SourceConfig& cfg,
                                             const std::string& key_path) {
  return std::make_unique<ManifestSource>(cfg, key_path);
}

}  // namespace coca::data::detail
