// IDX source: MNIST / Fashion-MNIST image and label files (LeCun's IDX format:
// 0x00 0x00 <type> <rank>, big-endian uint32 dims, then the data), plain or gzip
// compressed as Debian's dataset-fashion-mnist ships them. source.path is the images file
// (unsigned bytes, [N, H, W] grey or [N, H, W, 3]), source.labels_path the labels file
// ([N] unsigned bytes) and source.class_names names the label numbers (required; see
// configs/data/fashion_mnist_classes.txt). Grey pixels are replicated to RGB.
#include <fmt/format.h>

#include <algorithm>

#include "coca/common/error.h"
#include "data/detail/source_factories.h"
#include "data/detail/row_source.h"

namespace coca::data::detail {

namespace {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;  ///< whole file; data starts at `offset`
  size_t offset = 0;
};

IdxArray read_idx(const std::string& file) {
  IdxArray a;
  a.bytes = read_maybe_gzip(file);
  const auto& b = a.bytes;
  if (b.size() < 4 || b[0] != 0 || b[1] != 0) {
    throw IoError(file, "not an IDX file (expected magic 0x00 0x00 <type> <rank>)");
  }
  if (b[2] != 0x08) {
    throw IoError(file, fmt::format("IDX element type 0x{:02x} is not supported (expected 0x08, "
                                    "unsigned byte)", b[2]));
  }
  const size_t rank = b[3];
  if (rank == 0 || b.size() < 4 + 4 * rank) throw IoError(file, "IDX header is truncated");
  int64_t count = 1;
  for (size_t d = 0; d < rank; ++d) {
    const uint8_t* p = &b[4 + 4 * d];
    const int64_t dim = (int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | p[3];
    a.dims.push_back(dim);
    count *= dim;
  }
  a.offset = 4 + 4 * rank;
  if (static_cast<int64_t>(b.size() - a.offset) < count) {
    throw IoError(file, fmt::format("IDX data is truncated: header promises {} bytes, file has {}",
                                    count, b.size() - a.offset));
  }
  return a;
}

class IdxSource : public RowSource {
 public:
  IdxSource(const SourceConfig& cfg, const std::string& key_path) : RowSource(cfg) {
    if (cfg.text != "label") {
      throw ConfigError(fmt::format(
          "{}.text: idx sources have class labels, not captions; use text: label", key_path));
    }
    if (cfg.labels_path.empty()) {
      throw ConfigError(fmt::format("{}.labels_path: an idx source needs its labels file", key_path));
    }
    if (cfg.class_names.empty()) {
      throw ConfigError(fmt::format(
          "{}.class_names: an idx source needs a class-names file (one name per line for "
          "labels 0, 1, ...; e.g. configs/data/fashion_mnist_classes.txt)",
          key_path));
    }
    images_ = read_idx(cfg.path);
    const auto& d = images_.dims;
    if (!(d.size() == 3 || (d.size() == 4 && (d[3] == 1 || d[3] == 3)))) {
      throw IoError(cfg.path, fmt::format("IDX images must be [N, H, W] or [N, H, W, 1|3], got {} "
                                          "dimensions", d.size()));
    }
    height_ = d[1];
    width_ = d[2];
    channels_ = d.size() == 4 ? d[3] : 1;
    labels_ = read_idx(cfg.labels_path);
    if (labels_.dims.size() != 1 || labels_.dims[0] != d[0]) {
      throw IoError(cfg.labels_path,
                    fmt::format("IDX labels must be [N] with N = {} images of '{}', got {} "
                                "dimension(s), first {}",
                                d[0], cfg.path, labels_.dims.size(), labels_.dims[0]));
    }
    int64_t classes = 0;
    for (int64_t i = 0; i < d[0]; ++i) classes = std::max<int64_t>(classes, label(i) + 1);
    std::vector<std::string> ids;
    for (int64_t c = 0; c < classes; ++c) ids.push_back(std::to_string(c));
    class_names_ = read_class_names(cfg.class_names, ids, key_path);
    base_name_ = std::filesystem::path(cfg.path).filename().string();
    finish_rows(d[0], key_path);
  }

  bool read_row(int64_t row, RawSample& out, const SkipFn&, const std::string&) const override {
    out.key = fmt::format("{}#{}", base_name_, row);
    out.image_name = out.key;
    out.height = height_;
    out.width = width_;
    const size_t pixels = static_cast<size_t>(height_ * width_);
    const uint8_t* src = images_.bytes.data() + images_.offset +
                         static_cast<size_t>(row) * pixels * static_cast<size_t>(channels_);
    out.pixels.resize(pixels * 3);
    if (channels_ == 3) {
      std::copy(src, src + pixels * 3, out.pixels.begin());
    } else {
      for (size_t i = 0; i < pixels; ++i) {
        out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = src[i];
      }
    }
    const int64_t cls = label(row);
    out.label_ids = {cls};
    out.labels = class_names_[static_cast<size_t>(cls)];
    return true;
  }

  std::vector<std::vector<std::string>> class_names() const override { return class_names_; }

 private:
  int64_t label(int64_t i) const { return labels_.bytes[labels_.offset + static_cast<size_t>(i)]; }

  IdxArray images_;
  IdxArray labels_;
  int64_t height_ = 0;
  int64_t width_ = 0;
  int64_t channels_ = 1;
  std::vector<std::vector<std::string>> class_names_;
  std::string base_name_;
};

}  // namespace

std::unique_ptr<Source> make_idx_source(const SourceConfig& cfg, const std::string& key_path) {
  return std::make_unique<IdxSource>(cfg, key_path);
}

}  // namespace coca::data::detail
