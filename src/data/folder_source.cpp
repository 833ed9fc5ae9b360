// Folder source: ImageNet-style `path/<class_id>/<image>.{jpeg,jpg,png,webp}` (any case;
// hidden files and folders ignored). Classes are the sub-folders in byte order; label_ids is the class's position in that order
// and labels are its names from source.class_names (see read_class_names), or the folder
// name itself when no names file is given.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "coca/common/error.h"
#include "data/detail/source_factories.h"
#include "data/detail/row_source.h"

namespace coca::data::detail {

namespace {

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png" || ext == ".webp";
}

class FolderSource : public RowSource {
 public:
  FolderSource(const SourceConfig& cfg, const std::string& key_path) : RowSource(cfg) {
    if (cfg.text != "label") {
      throw ConfigError(fmt::format(
          "{}.text: folder sources have class labels, not captions; use text: label",
          key_path));
    }
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(cfg.path, ec)) {
      throw ConfigError(fmt::format("{}.path: '{}' is not a folder", key_path, cfg.path));
    }
    for (const auto& entry : fs::directory_iterator(cfg.path)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name[0] != '.') class_ids_.push_back(name);
    }
    std::sort(class_ids_.begin(), class_ids_.end());
    if (class_ids_.empty()) {
      throw DataError(cfg.path, "", "no class folders (expected path/<class_id>/<image>)");
    }
    if (cfg.class_names.empty()) {
      for (const auto& id : class_ids_) class_names_.push_back({id});
    } else {
      class_names_ = read_class_names(cfg.class_names, class_ids_, key_path);
    }
    for (size_t c = 0; c < class_ids_.size(); ++c) {
      std::vector<std::string> files;
      for (const auto& entry : fs::directory_iterator(fs::path(cfg.path) / class_ids_[c])) {
        // Hidden files (macOS "._x.jpg" forks, editor leftovers) are not images.
        if (entry.is_regular_file() && is_image_file(entry.path()) &&
            entry.path().filename().string()[0] != '.') {
          files.push_back(entry.path().filename().string());
        }
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) files_.push_back({static_cast<int64_t>(c), std::move(f)});
    }
    finish_rows(static_cast<int64_t>(files_.size()), key_path);
  }

  bool read_row(int64_t row, RawSample& out, const SkipFn& on_skip,
                const std::string& shard) const override {
    const auto& [cls, file] = files_[static_cast<size_t>(row)];
    const std::string& id = class_ids_[static_cast<size_t>(cls)];
    out.key = id + "/" + file;
    out.image_name = file;
    const auto path = std::filesystem::path(config_.path) / id / file;
    if (!read_file_bytes(path, out.image_bytes)) {
      on_skip(SkipReason::missing_file, shard, out.key,
              fmt::format("cannot read image '{}'", path.string()));
      return false;
    }
    out.labels = class_names_[static_cast<size_t>(cls)];
    out.label_ids = {cls};
    return true;
  }

  std::vector<std::vector<std::string>> class_names() const override { return class_names_; }

 private:
  std::vector<std::string> class_ids_;
  std::vector<std::vector<std::string>> class_names_;
  std::vector<std::pair<int64_t, std::string>> files_;  ///< (class, file name)
};

}  // namespace

std::unique_ptr<Source> make_folder_source(const SourceConfig& cfg, const std::string& key_path) {
  return std::make_unique<FolderSource>(cfg, key_path);
}

}  // namespace coca::data::detail
