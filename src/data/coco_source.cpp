// Caption json sources.
//  coco:     the captions file of COCO (`annotations/captions_train2017.json`):
//            `images[{id, file_name}]`, `annotations[{image_id, caption}]`. One sample per
//            image, in the order of `images`, with all of its captions. Images are read
//            from source.image_root (e.g. `coco/train2017`), or the json's folder when it
//            is empty. The split is the file itself, so source.split must stay empty.
//  karpathy: Karpathy's split file (`dataset_coco.json`, `dataset_flickr30k.json`):
//            `images[{filepath?, filename, split, sentences[{raw}]}]`, kept when `split`
//            is in source.split (a comma list such as "train,restval"; empty = all).
//            Images are read from <image_root>/<filepath>/<filename>.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "coca/common/error.h"
#include "data/detail/source_factories.h"
#include "data/detail/row_source.h"

namespace coca::data::detail {

namespace {

nlohmann::json load_json(const std::string& file, const std::string& key_path) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}.path: cannot open json '{}'", key_path, file));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(file, "", std::string("invalid json: ") + e.what());
  }
}

/// One image with its captions.
struct CaptionRow {
  std::string file;  ///< path relative to the image root
  std::vector<std::string> captions;
};

class CaptionJsonSource : public RowSource {
 public:
  CaptionJsonSource(const SourceConfig& cfg, std::vector<CaptionRow> rows,
                    const std::string& key_path)
      : RowSource(cfg), rows_(std::move(rows)), root_(image_root(cfg)) {
    finish_rows(static_cast<int64_t>(rows_.size()), key_path);
  }

  bool read_row(int64_t row, RawSample& out, const SkipFn& on_skip,
                const std::string& shard) const override {
    const CaptionRow& r = rows_[static_cast<size_t>(row)];
    out.key = r.file;
    out.image_name = r.file;
    for (const auto& c : r.captions) {
      std::string t = trim(c);
      if (!t.empty()) out.captions.push_back(std::move(t));
    }
    if (out.captions.empty()) {
      on_skip(SkipReason::empty_text, shard, r.file, "image has no non-empty caption");
      return false;
    }
    const auto path = resolve_path(root_, r.file);
    if (!read_file_bytes(path, out.image_bytes)) {
      on_skip(SkipReason::missing_file, shard, r.file,
              fmt::format("cannot read image '{}'", path.string()));
      return false;
    }
    return true;
  }

 private:
  std::vector<CaptionRow> rows_;
  std::filesystem::path root_;
};

void require_caption_text(const SourceConfig& cfg, const std::string& key_path) {
  if (cfg.text != "caption") {
    throw ConfigError(fmt::format("{}.text: {} sources have captions, not labels; use text: caption",
                                  key_path, cfg.type));
  }
}

[[noreturn]] void bad_field(const std::string& file, const std::string& what,
                            const std::string& detail) {
  throw DataError(file, "", fmt::format("unexpected json layout: {} ({})", what, detail));
}

}  // namespace

std::unique_ptr<Source> make_coco_source(const SourceConfig& cfg, const std::string& key_path) {
  require_caption_text(cfg, key_path);
  if (!cfg.split.empty()) {
    throw ConfigError(fmt::format(
        "{}.split: a COCO captions file is one split already (captions_<split>.json); leave "
        "split empty, or use type: karpathy for Karpathy's split file",
        key_path));
  }
  const nlohmann::json j = load_json(cfg.path, key_path);
  std::vector<CaptionRow> rows;
  std::unordered_map<int64_t, size_t> by_id;
  try {
    for (const auto& img : j.at("images")) {
      const int64_t id = img.at("id").get<int64_t>();
      if (!by_id.emplace(id, rows.size()).second) {
        bad_field(cfg.path, "images", fmt::format("image id {} appears twice", id));
      }
      rows.push_back({img.at("file_name").get<std::string>(), {}});
    }
    for (const auto& ann : j.at("annotations")) {
      const int64_t id = ann.at("image_id").get<int64_t>();
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        bad_field(cfg.path, "annotations",
                  fmt::format("caption for image id {} that is not in images", id));
      }
      rows[it->second].captions.push_back(ann.at("caption").get<std::string>());
    }
  } catch (const nlohmann::json::exception& e) {
    bad_field(cfg.path, "expected images[{id, file_name}] and annotations[{image_id, caption}]",
              e.what());
  }
  return std::make_unique<CaptionJsonSource>(cfg, std::move(rows), key_path);
}

std::unique_ptr<Source> make_karpathy_source(const SourceConfig& cfg,
                                             const std::string& key_path) {
  require_caption_text(cfg, key_path);
  std::set<std::string> splits;
  {
    std::stringstream ss(cfg.split);
    for (std::string s; std::getline(ss, s, ',');) {
      if (!trim(s).empty()) splits.insert(trim(s));
    }
  }
  const nlohmann::json j = load_json(cfg.path, key_path);
  std::vector<CaptionRow> rows;
  std::set<std::string> seen_splits;
  try {
    for (const auto& img : j.at("images")) {
      const std::string split = img.at("split").get<std::string>();
      seen_splits.insert(split);
      if (!splits.empty() && !splits.count(split)) continue;
      std::string file = img.at("filename").get<std::string>();
      if (img.contains("filepath") && !img.at("filepath").get<std::string>().empty()) {
        file = img.at("filepath").get<std::string>() + "/" + file;
      }
      CaptionRow row{std::move(file), {}};
      for (const auto& s : img.at("sentences")) row.captions.push_back(s.at("raw").get<std::string>());
      rows.push_back(std::move(row));
    }
  } catch (const nlohmann::json::exception& e) {
    bad_field(cfg.path, "expected images[{filepath?, filename, split, sentences[{raw}]}]",
              e.what());
  }
  if (rows.empty()) {
    std::string have;
    for (const auto& s : seen_splits) have += (have.empty() ? "" : ", ") + s;
    throw ConfigError(fmt::format("{}.split: no image of split '{}' in '{}' (splits found: {})",
                                  key_path, cfg.split, cfg.path, have));
  }
  return std::make_unique<CaptionJsonSource>(cfg, std::move(rows), key_path);
}

}  // namespace coca::data::detail
