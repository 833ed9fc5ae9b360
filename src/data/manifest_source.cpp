// Manifest source: a TSV/CSV file with a header row naming its columns (open_clip's
// CsvDataset layout: `filepath<TAB>title`). Fields may be quoted as in RFC 4180
// ("a, b" and "say ""hi""", quoted newlines included), whatever the separator. Image
// paths are relative to source.image_root, or to the manifest's folder when it is empty.
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "coca/common/error.h"
#include "data/detail/datab_sources.h"
#include "data/detail/row_source.h"

namespace coca::data::detail {

namespace {

struct Record {
  std::vector<std::string> fields;
  int64_t line = 0;  ///< 1-based line where the record starts
};

/// Splits `text` into records of fields. Throws DataError on an unterminated quote.
std::vector<Record> parse_delimited(const std::string& text, char sep, const std::string& file) {
  std::vector<Record> records;
  Record rec;
  std::string field;
  bool in_quotes = false;
  bool field_started = false;  // the current field has content or was quoted
  int64_t line = 1;
  int64_t quote_line = 0;
  rec.line = 1;
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    // A blank line is no record.
    if (!(rec.fields.size() == 1 && rec.fields[0].empty())) records.push_back(std::move(rec));
    rec = Record{};
    rec.line = line;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
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
      if (!field.empty() && field.back() == '\r') field.pop_back();
      ++line;
      end_record();
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (in_quotes) {
    throw DataError(file, "", fmt::format("line {}: quoted field is never closed", quote_line));
  }
  if (!field.empty() && field.back() == '\r') field.pop_back();
  if (field_started || !rec.fields.empty()) end_record();
  return records;
}

class ManifestSource : public RowSource {
 public:
  ManifestSource(const SourceConfig& cfg, const std::string& key_path) : RowSource(cfg) {
    if (cfg.text != "caption") {
      throw ConfigError(fmt::format(
          "{}.text: manifest sources have captions, not labels; use text: caption", key_path));
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
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<Record> records = parse_delimited(ss.str(), cfg.separator[0], cfg.path);
    if (records.empty()) throw DataError(cfg.path, "", "manifest is empty (no header row)");
    const auto& header = records.front().fields;
    auto column = [&](const std::string& want, const char* key) {
      for (size_t i = 0; i < header.size(); ++i) {
        if (trim(header[i]) == want) return i;
      }
      std::string found;
      for (const auto& h : header) found += (found.empty() ? "'" : ", '") + h + "'";
      throw ConfigError(fmt::format("{}.{}: column '{}' not in the header of '{}' (found {})",
                                    key_path, key, want, cfg.path, found));
    };
    file_col_ = column(cfg.filepath_column, "filepath_column");
    title_col_ = column(cfg.title_column, "title_column");
    root_ = image_root(cfg);
    records.erase(records.begin());
    records_ = std::move(records);
    finish_rows(static_cast<int64_t>(records_.size()), key_path);
  }

  bool read_row(int64_t row, RawSample& out, const SkipFn& on_skip,
                const std::string& shard) const override {
    const Record& rec = records_[static_cast<size_t>(row)];
    const std::string key = fmt::format("{}:{}", config_.path, rec.line);
    if (rec.fields.size() <= std::max(file_col_, title_col_)) {
      on_skip(SkipReason::other, shard, key,
              fmt::format("line has {} fields, the header has more", rec.fields.size()));
      return false;
    }
    const std::string& file = rec.fields[file_col_];
    out.key = file;
    out.image_name = file;
    const std::string caption = trim(rec.fields[title_col_]);
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
    out.captions.push_back(caption);
    return true;
  }

 private:
  std::vector<Record> records_;
  size_t file_col_ = 0;
  size_t title_col_ = 0;
  std::filesystem::path root_;
};

}  // namespace

std::unique_ptr<Source> make_manifest_source(const SourceConfig& cfg,
                                             const std::string& key_path) {
  return std::make_unique<ManifestSource>(cfg, key_path);
}

}  // namespace coca::data::detail
