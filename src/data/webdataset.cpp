#include "coca/data/webdataset.h"

#include <archive.h>
#include <archive_entry.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "data/detail/source_factories.h"

namespace coca::data {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The last dotted component of an extension: "seg.png" -> "png".
std::string last_ext(const std::string& ext) {
  const auto dot = ext.rfind('.');
  return lower(dot == std::string::npos ? ext : ext.substr(dot + 1));
}

bool is_image_ext(const std::string& ext) {
  const std::string e = last_ext(ext);
  return e == "jpg" || e == "jpeg" || e == "png" || e == "webp" || e == "bmp";
}

std::string as_string(const std::vector<uint8_t>& data) {
  return std::string(data.begin(), data.end());
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
  }
  try {
    out = std::stoll(s);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// "json:caption" -> {"json", "caption"}; "txt" -> {"txt", ""}.
std::pair<std::string, std::string> split_key(const std::string& key) {
  const auto colon = key.find(':');
  if (colon == std::string::npos) return {key, ""};
  return {key.substr(0, colon), key.substr(colon + 1)};
}

// Sniffs the image format from magic bytes (for RawSamples without a usable name).
std::string sniff_image_ext(const std::vector<uint8_t>& b) {
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "jpg";
  if (b.size() >= 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') return "png";
  if (b.size() >= 12 && b[0] == 'R' && b[1] == 'I' && b[2] == 'F' && b[3] == 'F' &&
      b[8] == 'W' && b[9] == 'E' && b[10] == 'B' && b[11] == 'P') {
    return "webp";
  }
  if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M') return "bmp";
  return "";
}

}  // namespace

TarMember TarMember::text(const std::string& ext, const std::string& text) {
  return TarMember{ext, std::vector<uint8_t>(text.begin(), text.end())};
}

std::pair<std::string, std::string> split_member_name(const std::string& path) {
  std::string p = path;
  while (p.rfind("./", 0) == 0) p = p.substr(2);
  const auto slash = p.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const auto dot = p.find('.', base);
  if (dot == std::string::npos) return {p, ""};
  return {p.substr(0, dot), p.substr(dot + 1)};
}

// =========================================================================================
// Writer

struct WebDatasetWriter::Impl {
  fs::path dir;
  std::string prefix;
  int64_t shard_size = 0;
  archive* ar = nullptr;
  fs::path tmp_path;
  fs::path final_path;
  int64_t in_shard = 0;
  int64_t total = 0;
  std::vector<std::string> shards;

  void fail(const std::string& what) {
    const std::string msg = what + (ar ? std::string(": ") + archive_error_string(ar) : "");
    throw IoError(tmp_path.string(), msg);
  }

  void open_shard() {
    char name[64];
    std::snprintf(name, sizeof(name), "-%05zu.tar", shards.size());
    final_path = dir / (prefix + name);
    tmp_path = final_path;
    tmp_path += ".tmp";
    ar = archive_write_new();
    if (ar == nullptr) throw IoError(tmp_path.string(), "archive_write_new failed");
    if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
        archive_write_add_filter_none(ar) != ARCHIVE_OK ||
        archive_write_open_filename(ar, tmp_path.c_str()) != ARCHIVE_OK) {
      fail("cannot open for writing");
    }
    in_shard = 0;
  }

  void close_shard() {
    if (ar == nullptr) return;
    archive* a = ar;
    const bool ok = archive_write_close(a) == ARCHIVE_OK;
    const std::string err = ok ? "" : archive_error_string(a) ? archive_error_string(a) : "";
    archive_write_free(a);
    ar = nullptr;
    if (!ok) throw IoError(tmp_path.string(), "cannot finish tar: " + err);
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    if (ec) throw IoError(final_path.string(), "cannot rename from .tmp: " + ec.message());
    shards.push_back(final_path.string());
  }

  void add(const std::string& name, const std::vector<uint8_t>& data) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 0, 0);
    const int rc = archive_write_header(ar, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) fail("cannot write header of '" + name + "'");
    if (!data.empty() &&
        archive_write_data(ar, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())) {
      fail("cannot write data of '" + name + "'");
    }
  }
};

WebDatasetWriter::WebDatasetWriter(const std::string& dir, const std::string& prefix,
                                   int64_t shard_size)
    : impl_(std::make_unique<Impl>()) {
  if (shard_size <= 0) {
    throw std::invalid_argument("WebDatasetWriter: shard_size must be positive, got " +
                                std::to_string(shard_size));
  }
  if (prefix.empty() || prefix.find('/') != std::string::npos) {
    throw std::invalid_argument("WebDatasetWriter: prefix must be a non-empty file name, got '" +
                                prefix + "'");
  }
  impl_->dir = dir;
  impl_->prefix = prefix;
  impl_->shard_size = shard_size;
  std::error_code ec;
  fs::create_directories(impl_->dir, ec);
  if (ec) throw IoError(dir, "cannot create folder: " + ec.message());
}

WebDatasetWriter::~WebDatasetWriter() {
  try {
    finish();
  } catch (const std::exception& e) {
    log::error("[data] WebDatasetWriter: {}", e.what());
  }
}

void WebDatasetWriter::write(const std::string& key, const std::vector<TarMember>& members) {
  const auto [k, ext] = split_member_name(key + ".x");
  if (key.empty() || k != key) {
    throw std::invalid_argument("WebDatasetWriter: key '" + key +
                                "' must be non-empty with no dot in its file name part");
  }
  for (const auto& m : members) {
    if (m.ext.empty() || m.ext.find('/') != std::string::npos) {
      throw std::invalid_argument("WebDatasetWriter: bad extension '" + m.ext + "' for key '" +
                                  key + "'");
    }
  }
  if (impl_->ar == nullptr) impl_->open_shard();
  for (const auto& m : members) impl_->add(key + "." + m.ext, m.data);
  ++impl_->total;
  if (++impl_->in_shard == impl_->shard_size) impl_->close_shard();
}

void WebDatasetWriter::write(const RawSample& sample) {
  std::vector<TarMember> members;
  if (!sample.image_bytes.empty()) {
    std::string ext = lower(fs::path(sample.image_name).extension().string());
    if (!ext.empty()) ext = ext.substr(1);
    if (!is_image_ext(ext)) ext = sniff_image_ext(sample.image_bytes);
    if (ext.empty()) {
      throw DataError(sample.image_name, sample.key,
                      "WebDatasetWriter: cannot tell the image format (extension or magic bytes)");
    }
    members.push_back({ext, sample.image_bytes});
  } else if (!sample.pixels.empty()) {
    Image image;
    image.height = sample.height;
    image.width = sample.width;
    image.rgb = sample.pixels;
    members.push_back({"png", encode_image(image, "png")});
  } else {
    throw DataError(sample.image_name, sample.key, "WebDatasetWriter: sample has no image");
  }
  if (!sample.captions.empty()) members.push_back(TarMember::text("txt", sample.captions[0]));
  if (!sample.label_ids.empty()) {
    std::string cls;
    for (int64_t id : sample.label_ids) cls += std::to_string(id) + "\n";
    members.push_back(TarMember::text("cls", cls));
  }
  if (sample.captions.size() > 1 || !sample.labels.empty()) {
    nlohmann::json j;
    j["captions"] = sample.captions;
    j["labels"] = sample.labels;
    j["label_ids"] = sample.label_ids;
    members.push_back(TarMember::text("json", j.dump()));
  }
  write(sample.key, members);
}

std::vector<std::string> WebDatasetWriter::finish() {
  impl_->close_shard();
  return impl_->shards;
}

int64_t WebDatasetWriter::samples_written() const { return impl_->total; }

// =========================================================================================
// Reader / source

namespace {

struct ClassNames {
  std::map<int64_t, std::string> by_id;
  std::unordered_map<std::string, int64_t> by_name;
};

// `id<TAB>name[, synonym...]` per line; a line without a tab gets the line's index.
ClassNames read_class_names(const std::string& path) {
  ClassNames out;
  if (path.empty()) return out;
  std::ifstream in(path);
  if (!in) throw IoError(path, "cannot open class names file");
  std::string line;
  int64_t next_id = 0;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    int64_t id = next_id;
    std::string names = line;
    const auto tab = line.find('\t');
    if (tab != std::string::npos) {
      if (!parse_int(trim(line.substr(0, tab)), id)) {
        throw IoError(path, "line " + std::to_string(line_no) + ": expected `id<TAB>name`, got '" +
                                line + "'");
      }
      names = line.substr(tab + 1);
    }
    std::string name = trim(names.substr(0, names.find(',')));
    if (name.empty()) {
      throw IoError(path, "line " + std::to_string(line_no) + ": empty class name");
    }
    out.by_id[id] = name;
    out.by_name.emplace(name, id);
    next_id = id + 1;
  }
  if (out.by_id.empty()) throw IoError(path, "no class names");
  return out;
}

struct Member {
  std::string key;
  std::string ext;
  std::string name;  // full member path
  std::vector<uint8_t> data;
};

class WebDatasetSource;

class WebDatasetReader : public ShardReader {
 public:
  WebDatasetReader(const WebDatasetSource& source, const std::string& path, SkipFn on_skip);
  ~WebDatasetReader() override {
    if (ar_ != nullptr) archive_read_free(ar_);
  }
  bool next(RawSample& out) override;

 private:
  enum class Read { ok, eof, error };
  Read read_member(Member& m);
  void truncated(const std::string& detail) {
    if (on_skip_) on_skip_(SkipReason::truncated_shard, path_, "", detail);
    done_ = true;
  }
  bool wanted(const std::string& ext) const;
  // Builds a sample from one key's members; false (and a skip report) when unusable.
  bool make_sample(const std::string& key, std::vector<Member>& members, RawSample& out);

  const WebDatasetSource& source_;
  std::string path_;
  SkipFn on_skip_;
  archive* ar_ = nullptr;
  bool done_ = false;
  std::optional<Member> pending_;
};

class WebDatasetSource : public Source {
 public:
  WebDatasetSource(const SourceConfig& cfg, const std::string& key_path) : cfg_(cfg) {
    if (cfg_.path.empty()) throw ConfigError(key_path + ".path: a shard pattern is required");
    std::vector<std::string> paths;
    if (fs::is_directory(cfg_.path)) {
      for (const auto& e : fs::directory_iterator(cfg_.path)) {
        const std::string n = e.path().filename().string();
        if (e.is_regular_file() && (n.size() > 4 && (n.find(".tar") != std::string::npos))) {
          paths.push_back(e.path().string());
        }
      }
      std::sort(paths.begin(), paths.end());
    } else {
      try {
        paths = expand_braces(cfg_.path);
      } catch (const std::invalid_argument& e) {
        throw ConfigError(key_path + ".path: " + e.what());
      }
    }
    int64_t missing = 0;
    std::string first_missing;
    for (const auto& p : paths) {
      if (fs::is_regular_file(p)) {
        ShardInfo info;
        info.name = p;
        info.index = static_cast<int64_t>(shards_.size());
        shards_.push_back(info);
      } else if (missing++ == 0) {
        first_missing = p;
      }
    }
    if (shards_.empty()) {
      throw DataError(cfg_.path, "",
                      "no shard found (" + std::to_string(paths.size()) +
                          " paths from the pattern, none is a file; " + key_path + ".path)");
    }
    if (missing > 0) {
      log::warn("[data] {}: {} of {} shards missing (first: {}); reading the rest", key_path,
                missing, paths.size(), first_missing);
    }
    for (const std::string* k : {&cfg_.caption_key, &cfg_.label_key}) {
      if (k->empty()) throw ConfigError(key_path + ": caption_key and label_key must not be empty");
    }
    classes_ = read_class_names(cfg_.class_names);
  }

  const SourceConfig& config() const override { return cfg_; }
  const std::vector<ShardInfo>& shards() const override { return shards_; }
  std::unique_ptr<ShardReader> open(int64_t index, const SkipFn& on_skip) const override {
    if (index < 0 || index >= static_cast<int64_t>(shards_.size())) {
      throw std::out_of_range("webdataset source '" + cfg_.path + "': shard " +
                              std::to_string(index) + " of " + std::to_string(shards_.size()));
    }
    return std::make_unique<WebDatasetReader>(*this, shards_[index].name, on_skip);
  }

  const ClassNames& classes() const { return classes_; }
  std::vector<std::vector<std::string>> class_names() const override {
    if (classes_.by_id.empty()) return {};
    std::vector<std::vector<std::string>> out(static_cast<size_t>(classes_.by_id.rbegin()->first + 1));
    for (const auto& [id, name] : classes_.by_id) {
      if (id >= 0) out[static_cast<size_t>(id)] = {name};
    }
    return out;
  }

 private:
  SourceConfig cfg_;
  std::vector<ShardInfo> shards_;
  ClassNames classes_;
};

WebDatasetReader::WebDatasetReader(const WebDatasetSource& source, const std::string& path,
                                   SkipFn on_skip)
    : source_(source), path_(path), on_skip_(std::move(on_skip)) {
  ar_ = archive_read_new();
  archive_read_support_filter_all(ar_);
  archive_read_support_format_tar(ar_);
  if (archive_read_open_filename(ar_, path_.c_str(), 1 << 16) != ARCHIVE_OK) {
    truncated(std::string("cannot open: ") + archive_error_string(ar_));
  }
}

bool WebDatasetReader::wanted(const std::string& ext) const {
  if (is_image_ext(ext)) return true;
  const auto& cfg = source_.config();
  return ext == split_key(cfg.caption_key).first || ext == split_key(cfg.label_key).first;
}

WebDatasetReader::Read WebDatasetReader::read_member(Member& m) {
  while (true) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(ar_, &e);
    if (rc == ARCHIVE_EOF) {
      // Plain tars end with zero blocks; libarchive accepts a file that stops at a block
      // boundary without them, which is what a tar cut by a failed copy looks like.
      if (archive_filter_count(ar_) <= 1) {
        std::ifstream f(path_, std::ios::binary | std::ios::ate);
        const auto size = static_cast<int64_t>(f.tellg());
        if (size >= 512) {
          std::vector<char> tail(512);
          f.seekg(size - 512);
          f.read(tail.data(), 512);
          if (std::any_of(tail.begin(), tail.end(), [](char c) { return c != 0; })) {
            m.name = "missing end-of-archive blocks after " + std::to_string(size) + " bytes";
            return Read::error;
          }
        }
      }
      return Read::eof;
    }
    if (rc < ARCHIVE_WARN) {
      m.name = archive_error_string(ar_) ? archive_error_string(ar_) : "read error";
      return Read::error;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    auto [key, ext] = split_member_name(name);
    if (!wanted(ext)) {
      // Still hand the key to the grouping logic, without reading the bytes.
      if (archive_read_data_skip(ar_) < ARCHIVE_WARN) {
        m.name = archive_error_string(ar_) ? archive_error_string(ar_) : "read error";
        return Read::error;
      }
      m.key = key;
      m.ext = ext;
      m.name = name;
      m.data.clear();
      return Read::ok;
    }
    m.key = key;
    m.ext = ext;
    m.name = name;
    m.data.clear();
    if (archive_entry_size_is_set(e)) m.data.reserve(static_cast<size_t>(archive_entry_size(e)));
    char buf[1 << 16];
    while (true) {
      const la_ssize_t n = archive_read_data(ar_, buf, sizeof(buf));
      if (n == 0) break;
      if (n < 0) {
        m.name = archive_error_string(ar_) ? archive_error_string(ar_) : "read error";
        return Read::error;
      }
      m.data.insert(m.data.end(), buf, buf + n);
    }
    return Read::ok;
  }
}

bool WebDatasetReader::next(RawSample& out) {
  while (!done_) {
    std::vector<Member> group;
    if (pending_) {
      group.push_back(std::move(*pending_));
      pending_.reset();
    } else {
      Member m;
      const Read r = read_member(m);
      if (r == Read::error) {
        truncated(m.name);
        return false;
      }
      if (r == Read::eof) {
        done_ = true;
        return false;
      }
      group.push_back(std::move(m));
    }
    while (true) {
      Member m;
      const Read r = read_member(m);
      if (r == Read::error) {
        truncated(m.name);  // the group being read may be incomplete: drop it
        return false;
      }
      if (r == Read::eof) {
        done_ = true;
        break;
      }
      if (m.key != group.front().key) {
        pending_ = std::move(m);
        break;
      }
      group.push_back(std::move(m));
    }
    const std::string key = group.front().key;
    if (make_sample(key, group, out)) return true;
  }
  return false;
}

bool WebDatasetReader::make_sample(const std::string& key, std::vector<Member>& members,
                                   RawSample& out) {
  const SourceConfig& cfg = source_.config();
  auto skip = [&](SkipReason reason, const std::string& detail) {
    if (on_skip_) on_skip_(reason, path_, key, detail);
    return false;
  };
  auto find = [&](const std::string& ext) -> Member* {
    for (auto& m : members) {
      if (m.ext == ext) return &m;
    }
    return nullptr;
  };
  auto member_list = [&] {
    std::string s;
    for (const auto& m : members) s += (s.empty() ? "" : ", ") + m.ext;
    return s;
  };
  // JSON members are parsed at most once per sample.
  std::map<std::string, nlohmann::json> parsed;
  auto json_field = [&](const std::string& ext, const std::string& field,
                        const nlohmann::json*& value) -> std::string {
    value = nullptr;
    Member* m = find(ext);
    if (m == nullptr) return "no '" + ext + "' member";
    auto it = parsed.find(ext);
    if (it == parsed.end()) {
      nlohmann::json j = nlohmann::json::parse(m->data.begin(), m->data.end(), nullptr, false);
      if (j.is_discarded()) return "member '" + m->name + "' is not valid JSON";
      it = parsed.emplace(ext, std::move(j)).first;
    }
    if (!it->second.is_object() || !it->second.contains(field)) {
      return "member '" + m->name + "' has no field '" + field + "'";
    }
    value = &it->second[field];
    return "";
  };

  out = RawSample{};
  out.key = key;
  Member* image = nullptr;
  for (auto& m : members) {
    if (is_image_ext(m.ext)) {
      image = &m;
      break;
    }
  }
  if (image == nullptr) {
    return skip(SkipReason::missing_file,
                "no image member (jpg/jpeg/png/webp/bmp) among: " + member_list());
  }
  out.image_name = path_ + ":" + image->name;
  out.image_bytes = std::move(image->data);

  // Caption(s).
  std::string caption_problem;
  {
    const auto [ext, field] = split_key(cfg.caption_key);
    if (field.empty()) {
      Member* m = find(ext);
      if (m == nullptr) {
        caption_problem = "no '" + ext + "' member";
      } else {
        const std::string text = trim(as_string(m->data));
        if (!text.empty()) out.captions.push_back(text);
      }
    } else {
      const nlohmann::json* v = nullptr;
      caption_problem = json_field(ext, field, v);
      if (v != nullptr) {
        if (v->is_string()) {
          const std::string t = trim(v->get<std::string>());
          if (!t.empty()) out.captions.push_back(t);
        } else if (v->is_array()) {
          for (const auto& c : *v) {
            if (!c.is_string()) continue;
            const std::string t = trim(c.get<std::string>());
            if (!t.empty()) out.captions.push_back(t);
          }
        } else {
          caption_problem = "field '" + field + "' is neither a string nor a list of strings";
        }
      }
    }
    if (caption_problem.empty() && out.captions.empty()) caption_problem = "empty caption";
  }

  // Labels.
  std::vector<std::string> entries;
  std::vector<int64_t> ids;
  {
    const auto [ext, field] = split_key(cfg.label_key);
    if (field.empty()) {
      if (Member* m = find(ext)) {
        const std::string text = as_string(m->data);
        if (text.find_first_of(",\n") != std::string::npos) {
          size_t start = 0;
          while (start <= text.size()) {
            const size_t end = text.find_first_of(",\n", start);
            const std::string t = trim(text.substr(start, end - start));
            if (!t.empty()) entries.push_back(t);
            if (end == std::string::npos) break;
            start = end + 1;
          }
        } else {
          // One line: space-separated integers, or a single name.
          const std::string t = trim(text);
          std::vector<std::string> words;
          size_t start = 0;
          while (start < t.size()) {
            const size_t end = t.find_first_of(" \t", start);
            const std::string w = t.substr(start, end - start);
            if (!w.empty()) words.push_back(w);
            if (end == std::string::npos) break;
            start = end + 1;
          }
          int64_t dummy = 0;
          const bool all_ints = !words.empty() && std::all_of(words.begin(), words.end(),
                                                               [&](const std::string& w) {
                                                                 return parse_int(w, dummy);
                                                               });
          if (all_ints) {
            entries = words;
          } else if (!t.empty()) {
            entries.push_back(t);
          }
        }
      }
    } else {
      const nlohmann::json* v = nullptr;
      json_field(ext, field, v);
      if (v != nullptr) {
        auto add = [&](const nlohmann::json& x) {
          if (x.is_number_integer()) entries.push_back(std::to_string(x.get<int64_t>()));
          if (x.is_string()) entries.push_back(trim(x.get<std::string>()));
        };
        if (v->is_array()) {
          for (const auto& x : *v) add(x);
        } else {
          add(*v);
        }
      }
    }
  }
  const ClassNames& classes = source_.classes();
  for (const auto& e : entries) {
    int64_t id = 0;
    if (parse_int(e, id)) {
      out.label_ids.push_back(id);
      if (!classes.by_id.empty()) {
        auto it = classes.by_id.find(id);
        if (it == classes.by_id.end()) {
          return skip(SkipReason::other, "label id " + std::to_string(id) + " is not in " +
                                             cfg.class_names);
        }
        out.labels.push_back(it->second);
      }
    } else if (!e.empty()) {
      out.labels.push_back(e);
      auto it = classes.by_name.find(e);
      if (it != classes.by_name.end()) out.label_ids.push_back(it->second);
    }
  }

  if (cfg.text == "label") {
    if (out.labels.empty()) {
      return skip(SkipReason::empty_text,
                  "no label names from '" + cfg.label_key + "'" +
                      (classes.by_id.empty() && !out.label_ids.empty()
                           ? " (ids need a class_names file)"
                           : ""));
    }
  } else if (out.captions.empty()) {
    return skip(SkipReason::empty_text, caption_problem + " (caption_key '" + cfg.caption_key +
                                            "'; members: " + member_list() + ")");
  }
  return true;
}

}  // namespace

namespace detail {

std::unique_ptr<Source> make_webdataset_source(const SourceConfig& cfg,
                                               const std::string& key_path) {
  return std::make_unique<WebDatasetSource>(cfg, key_path);
}

}  // namespace detail
}  // namespace coca::data
