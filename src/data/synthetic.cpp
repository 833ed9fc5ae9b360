#include "coca/data/synthetic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "coca/common/error.h"
#include "coca/data/sources.h"
#include "coca/data/webdataset.h"
#include "data/detail/random.h"
#include "data/detail/source_factories.h"

namespace coca::data {
namespace {

using detail::uniform;
using detail::uniform_int;

constexpr double kPi = 3.14159265358979323846;
constexpr double kExtent = 1.15;       // every shape lies within +-kExtent * radius per axis
constexpr double kLargeRadius = 0.20;  // of the image side
constexpr double kSmallRadius = 0.11;
constexpr int64_t kShardRows = 1000;   // samples per shard of the synthetic source

struct Region {
  double x0, y0, x1, y1;
};

struct Point {
  double x, y;
};

std::array<uint8_t, 3> muted_colour(std::mt19937_64& rng) {
  const int64_t v = 60 + uniform_int(rng, 111);  // 60..170
  std::array<uint8_t, 3> c{};
  for (auto& ch : c) ch = static_cast<uint8_t>(v - 20 + uniform_int(rng, 41));
  return c;
}

void draw_background(Image& img, std::mt19937_64& rng) {
  const int64_t kind = uniform_int(rng, 4);  // solid, gradient, noise, gradient + noise
  const auto a = muted_colour(rng);
  const auto b = (kind == 1 || kind == 3) ? muted_colour(rng) : a;
  const double angle = uniform(rng, 0.0, 2.0 * kPi);
  const double dx = std::cos(angle), dy = std::sin(angle);
  const int noise = kind >= 2 ? 12 : 0;
  const double s = static_cast<double>(img.width);
  for (int64_t y = 0; y < img.height; ++y) {
    for (int64_t x = 0; x < img.width; ++x) {
      // Projection on the gradient direction, mapped to 0..1 over the image.
      const double t = std::clamp(
          0.5 + ((static_cast<double>(x) + 0.5 - s / 2) * dx +
                 (static_cast<double>(y) + 0.5 - s / 2) * dy) / (s * 1.4142),
          0.0, 1.0);
      uint8_t* p = img.pixel(y, x);
      for (int c = 0; c < 3; ++c) {
        double v = a[c] * (1.0 - t) + b[c] * t;
        if (noise) v += static_cast<double>(uniform_int(rng, 2 * noise + 1) - noise);
        p[c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
}

bool in_polygon(const std::vector<Point>& poly, double x, double y) {
  bool inside = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    if ((poly[i].y > y) != (poly[j].y > y) &&
        x < (poly[j].x - poly[i].x) * (y - poly[i].y) / (poly[j].y - poly[i].y) + poly[i].x) {
      inside = !inside;
    }
  }
  return inside;
}

std::vector<Point> shape_polygon(const SynthObject& o) {
  std::vector<Point> poly;
  const double r = kExtent * o.radius;
  if (o.shape == 2) {  // triangle pointing up, centroid at the centre
    for (int k = 0; k < 3; ++k) {
      const double a = -kPi / 2 + k * 2 * kPi / 3;
      poly.push_back({o.x + r * std::cos(a), o.y + r * std::sin(a)});
    }
  } else if (o.shape == 3) {  // five-pointed star, one point up
    for (int k = 0; k < 10; ++k) {
      const double a = -kPi / 2 + k * kPi / 5;
      const double rr = k % 2 == 0 ? r : 0.5 * r;
      poly.push_back({o.x + rr * std::cos(a), o.y + rr * std::sin(a)});
    }
  }
  return poly;
}

bool inside(const SynthObject& o, const std::vector<Point>& poly, double x, double y) {
  const double dx = x - o.x, dy = y - o.y;
  switch (o.shape) {
    case 0:
      return dx * dx + dy * dy <= o.radius * o.radius;
    case 1: {  // same area as the circle
      const double h = 0.886 * o.radius;
      return std::abs(dx) <= h && std::abs(dy) <= h;
    }
    default:
      return in_polygon(poly, x, y);
  }
}

// Flat colour with 2x2 supersampled edges: interior pixels get the exact colour.
void draw_object(Image& img, const SynthObject& o) {
  const auto& rgb = synthetic_colour_rgb()[o.colour];
  const std::vector<Point> poly = shape_polygon(o);
  const double ext = kExtent * o.radius + 1;
  const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(o.x - ext)));
  const int64_t x1 = std::min<int64_t>(img.width - 1, static_cast<int64_t>(std::ceil(o.x + ext)));
  const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(o.y - ext)));
  const int64_t y1 = std::min<int64_t>(img.height - 1, static_cast<int64_t>(std::ceil(o.y + ext)));
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      int covered = 0;
      for (double sy : {0.25, 0.75}) {
        for (double sx : {0.25, 0.75}) covered += inside(o, poly, x + sx, y + sy) ? 1 : 0;
      }
      if (covered == 0) continue;
      uint8_t* p = img.pixel(y, x);
      for (int c = 0; c < 3; ++c) {
        p[c] = static_cast<uint8_t>((p[c] * (4 - covered) + rgb[c] * covered + 2) / 4);
      }
    }
  }
}

std::vector<Region> split(const Region& r, int64_t count, std::mt19937_64& rng) {
  if (count == 1) return {r};
  const double w = r.x1 - r.x0, h = r.y1 - r.y0;
  if (count == 2) {
    const bool vertical_cut = w > h || (w == h && uniform_int(rng, 2) == 0);
    if (vertical_cut) {
      const double m = r.x0 + w / 2;
      return {{r.x0, r.y0, m, r.y1}, {m, r.y0, r.x1, r.y1}};
    }
    const double m = r.y0 + h / 2;
    return {{r.x0, r.y0, r.x1, m}, {r.x0, m, r.x1, r.y1}};
  }
  // Three: three of the four quadrants.
  const double mx = r.x0 + w / 2, my = r.y0 + h / 2;
  std::vector<Region> q = {{r.x0, r.y0, mx, my}, {mx, r.y0, r.x1, my},
                           {r.x0, my, mx, r.y1}, {mx, my, r.x1, r.y1}};
  q.erase(q.begin() + uniform_int(rng, 4));
  return q;
}

double place(double lo, double hi, double ext, std::mt19937_64& rng) {
  const double a = lo + ext, b = hi - ext;
  return a < b ? uniform(rng, a, b) : (lo + hi) / 2;
}

std::string group_phrase(int64_t count, bool large, int64_t colour, int64_t shape) {
  static const char* kCount[] = {"", "a", "two", "three"};
  return std::string(kCount[count]) + (large ? " large " : " small ") +
         synthetic_colours()[colour] + " " + synthetic_shapes()[shape] + (count > 1 ? "s" : "");
}

}  // namespace

const std::vector<std::string>& synthetic_shapes() {
  static const std::vector<std::string> kShapes = {"circle", "square", "triangle", "star"};
  return kShapes;
}

const std::vector<std::string>& synthetic_colours() {
  static const std::vector<std::string> kColours = {"red",    "green",  "blue", "yellow",
                                                     "purple", "orange", "white"};
  return kColours;
}

const std::vector<std::array<uint8_t, 3>>& synthetic_colour_rgb() {
  static const std::vector<std::array<uint8_t, 3>> kRgb = {
      {220, 30, 30}, {30, 170, 60}, {30, 70, 220}, {240, 220, 30},
      {140, 50, 190}, {250, 140, 10}, {250, 250, 250}};
  return kRgb;
}

std::vector<std::string> synthetic_class_names() {
  std::vector<std::string> names;
  for (const auto& c : synthetic_colours()) {
    for (const auto& s : synthetic_shapes()) names.push_back(c + " " + s);
  }
  return names;
}

SynthScene make_synthetic_scene(uint64_t seed, int64_t index, int64_t size) {
  if (size < 16) {
    throw std::invalid_argument("make_synthetic_scene: size must be >= 16, got " +
                                std::to_string(size));
  }
  if (index < 0) {
    throw std::invalid_argument("make_synthetic_scene: negative index " + std::to_string(index));
  }
  std::mt19937_64 rng(detail::mix64(detail::mix64(seed ^ 0x5359'4E54'4845'5449ULL) ^
                                         static_cast<uint64_t>(index)));
  const int64_t n_shapes = static_cast<int64_t>(synthetic_shapes().size());
  const int64_t n_colours = static_cast<int64_t>(synthetic_colours().size());
  const double s = static_cast<double>(size);

  SynthScene scene;
  scene.image.height = size;
  scene.image.width = size;
  scene.image.rgb.resize(size * size * 3);
  draw_background(scene.image, rng);

  // Groups: one (1-3 objects) or two (1+1, 2+1, 1+2) with a spatial relation.
  const bool two = uniform(rng, 0.0, 1.0) < 0.6;
  std::vector<int64_t> counts;
  if (two) {
    static const int64_t kPairs[3][2] = {{1, 1}, {2, 1}, {1, 2}};
    const int64_t p = uniform_int(rng, 3);
    counts = {kPairs[p][0], kPairs[p][1]};
  } else {
    const double u = uniform(rng, 0.0, 1.0);
    counts = {u < 0.5 ? 1 : u < 0.8 ? 2 : 3};
  }
  std::vector<int64_t> classes;
  while (classes.size() < counts.size()) {
    const int64_t c = uniform_int(rng, n_colours * n_shapes);
    if (std::find(classes.begin(), classes.end(), c) == classes.end()) classes.push_back(c);
  }
  std::vector<Region> regions;
  if (two) {
    static const char* kRelations[] = {"to the left of", "to the right of", "above", "below"};
    const int64_t rel = uniform_int(rng, 4);
    scene.relation = kRelations[rel];
    const Region left{0, 0, s / 2, s}, right{s / 2, 0, s, s}, top{0, 0, s, s / 2},
        bottom{0, s / 2, s, s};
    // First-mentioned group's region, then the other's.
    const Region order[4][2] = {{left, right}, {right, left}, {top, bottom}, {bottom, top}};
    regions.push_back(order[rel][0]);
    regions.push_back(order[rel][1]);
  } else {
    regions.push_back(Region{0, 0, s, s});
  }

  std::vector<std::string> phrases;
  for (size_t g = 0; g < counts.size(); ++g) {
    const bool large = uniform_int(rng, 2) == 1;
    const int64_t colour = classes[g] / n_shapes;
    const int64_t shape = classes[g] % n_shapes;
    for (const Region& cell : split(regions[g], counts[g], rng)) {
      SynthObject o;
      o.shape = shape;
      o.colour = colour;
      o.large = large;
      o.group = static_cast<int64_t>(g);
      o.radius = (large ? kLargeRadius : kSmallRadius) * s * uniform(rng, 0.92, 1.08);
      const double ext = kExtent * o.radius + 1;
      o.x = place(cell.x0, cell.x1, ext, rng);
      o.y = place(cell.y0, cell.y1, ext, rng);
      draw_object(scene.image, o);
      scene.objects.push_back(o);
    }
    phrases.push_back(group_phrase(counts[g], large, colour, shape));
    scene.label_ids.push_back(classes[g]);
    scene.labels.push_back(synthetic_colours()[colour] + " " + synthetic_shapes()[shape]);
  }
  scene.caption = phrases[0];
  if (two) scene.caption += " " + scene.relation + " " + phrases[1];
  return scene;
}

RawSample synthetic_sample(uint64_t seed, int64_t index, int64_t size) {
  SynthScene scene = make_synthetic_scene(seed, index, size);
  RawSample out;
  char key[32];
  std::snprintf(key, sizeof(key), "%08lld", static_cast<long long>(index));
  out.key = key;
  out.image_name = out.key + ".png";
  out.height = scene.image.height;
  out.width = scene.image.width;
  out.pixels = std::move(scene.image.rgb);
  out.captions = {scene.caption};
  out.labels = scene.labels;
  out.label_ids = scene.label_ids;
  return out;
}

std::string synthetic_scene_json(const SynthScene& scene) {
  nlohmann::json j;
  j["caption"] = scene.caption;
  j["labels"] = scene.labels;
  j["label_ids"] = scene.label_ids;
  j["relation"] = scene.relation;
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& o : scene.objects) {
    objects.push_back({{"shape", synthetic_shapes()[o.shape]},
                       {"colour", synthetic_colours()[o.colour]},
                       {"size", o.large ? "large" : "small"},
                       {"group", o.group},
                       {"x", o.x},
                       {"y", o.y},
                       {"radius", o.radius}});
  }
  j["objects"] = objects;
  return j.dump();
}

SynthDatasetInfo write_synthetic_dataset(const std::string& dir, int64_t samples, uint64_t seed,
                                         int64_t size, int64_t shard_size,
                                         const std::string& split) {
  if (samples <= 0) {
    throw std::invalid_argument("write_synthetic_dataset: samples must be positive, got " +
                                std::to_string(samples));
  }
  SynthDatasetInfo info;
  WebDatasetWriter writer(dir, split, shard_size);
  for (int64_t i = 0; i < samples; ++i) {
    const SynthScene scene = make_synthetic_scene(seed, i, size);
    std::string cls;
    for (int64_t id : scene.label_ids) cls += std::to_string(id) + "\n";
    char key[32];
    std::snprintf(key, sizeof(key), "%08lld", static_cast<long long>(i));
    writer.write(key, {TarMember{"png", encode_image(scene.image, "png")},
                       TarMember::text("txt", scene.caption), TarMember::text("cls", cls),
                       TarMember::text("json", synthetic_scene_json(scene))});
  }
  info.shards = writer.finish();
  info.samples = writer.samples_written();
  info.classes_file = (std::filesystem::path(dir) / "classes.txt").string();
  std::ofstream out(info.classes_file);
  const auto names = synthetic_class_names();
  for (size_t i = 0; i < names.size(); ++i) out << i << '\t' << names[i] << '\n';
  if (!out) throw IoError(info.classes_file, "cannot write class list");
  return info;
}

// =========================================================================================
// Source

namespace {

class SyntheticReader : public ShardReader {
 public:
  SyntheticReader(uint64_t seed, int64_t size, int64_t first, int64_t last)
      : seed_(seed), size_(size), next_(first), last_(last) {}
  bool next(RawSample& out) override {
    if (next_ >= last_) return false;
    out = synthetic_sample(seed_, next_++, size_);
    return true;
  }

 private:
  uint64_t seed_;
  int64_t size_;
  int64_t next_;
  int64_t last_;
};

class SyntheticSource : public Source {
 public:
  SyntheticSource(const SourceConfig& cfg, const std::string& key_path) : cfg_(cfg) {
    if (cfg_.samples <= 0) {
      throw ConfigError(key_path + ".samples must be > 0 for a synthetic source (samples per "
                                   "epoch), got " + std::to_string(cfg_.samples));
    }
    if (cfg_.image_size < 16) {
      throw ConfigError(key_path + ".image_size must be >= 16 for a synthetic source, got " +
                        std::to_string(cfg_.image_size));
    }
    const std::string name = cfg_.name.empty() ? "synthetic" : cfg_.name;
    for (int64_t first = 0; first < cfg_.samples; first += kShardRows) {
      const int64_t last = std::min(cfg_.samples, first + kShardRows);
      ShardInfo info;
      info.name = name + "[" + std::to_string(first) + ":" + std::to_string(last) + ")";
      info.index = static_cast<int64_t>(shards_.size());
      info.samples = last - first;
      shards_.push_back(info);
    }
  }
  const SourceConfig& config() const override { return cfg_; }
  const std::vector<ShardInfo>& shards() const override { return shards_; }
  std::vector<std::vector<std::string>> class_names() const override {
    std::vector<std::vector<std::string>> out;
    for (const auto& name : synthetic_class_names()) out.push_back({name});
    return out;
  }
  std::unique_ptr<ShardReader> open(int64_t index, const SkipFn& /*on_skip*/) const override {
    if (index < 0 || index >= static_cast<int64_t>(shards_.size())) {
      throw std::out_of_range("synthetic source: shard " + std::to_string(index) + " of " +
                              std::to_string(shards_.size()));
    }
    const int64_t first = index * kShardRows;
    return std::make_unique<SyntheticReader>(cfg_.seed, cfg_.image_size, first,
                                             first + shards_[index].samples);
  }

 private:
  SourceConfig cfg_;
  std::vector<ShardInfo> shards_;
};

}  // namespace

namespace detail {

std::unique_ptr<Source> make_synthetic_source(const SourceConfig& cfg,
                                              const std::string& key_path) {
  return std::make_unique<SyntheticSource>(cfg, key_path);
}

}  // namespace detail
}  // namespace coca::data
