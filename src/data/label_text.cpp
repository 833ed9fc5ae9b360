// Labels as text (paper §4.1) and CLIP's ImageNet prompt templates.
#include "coca/data/label_text.h"

#include <fstream>
#include <stdexcept>

#include "coca/common/error.h"

namespace coca::data {
namespace {

// SplitMix64 (Steele et al. 2014): a fixed generator, so texts do not depend on the
// standard library's distributions.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v = next();
    while (v >= limit) v = next();
    return v % n;
  }

 private:
  uint64_t state_;
};

uint64_t mix_seed(uint64_t seed, uint64_t position) {
  SplitMix64 a(seed);
  SplitMix64 b(a.next() ^ position);
  return b.next();
}

}  // namespace

std::string label_text(const std::vector<std::string>& names, uint64_t seed,
                       uint64_t sample_position, const LabelTextConfig& cfg,
                       const std::vector<std::string>& templates) {
  if (templates.empty()) throw std::invalid_argument("label_text: no templates");
  if (names.empty()) throw std::invalid_argument("label_text: sample has no label names");
  SplitMix64 rng(mix_seed(seed, sample_position));
  std::vector<std::string> order = names;
  if (cfg.shuffle) {
    for (size_t i = order.size(); i > 1; --i) {  // Fisher-Yates
      std::swap(order[i - 1], order[rng.below(i)]);
    }
  }
  std::string joined;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0) joined += cfg.separator;
    joined += order[i];
  }
  const std::string& tmpl = templates[rng.below(templates.size())];
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 2, "{}") == 0) {
      out += joined;
      i += 2;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

const std::vector<std::string>& clip_imagenet_templates() {
  static const std::vector<std::string> templates = {
      "a bad photo of a {}.",
      "a photo of many {}.",
      "a sculpture of a {}.",
      "a photo of the hard to see {}.",
      "a low resolution photo of the {}.",
      "a rendering of a {}.",
      "graffiti of a {}.",
      "a bad photo of the {}.",
      "a cropped photo of the {}.",
      "a tattoo of a {}.",
      "the embroidered {}.",
      "a photo of a hard to see {}.",
      "a bright photo of a {}.",
      "a photo of a clean {}.",
      "a photo of a dirty {}.",
      "a dark photo of the {}.",
      "a drawing of a {}.",
      "a photo of my {}.",
      "the plastic {}.",
      "a photo of the cool {}.",
      "a close-up photo of a {}.",
      "a black and white photo of the {}.",
      "a painting of the {}.",
      "a painting of a {}.",
      "a pixelated photo of the {}.",
      "a sculpture of the {}.",
      "a bright photo of the {}.",
      "a cropped photo of a {}.",
      "a plastic {}.",
      "a photo of the dirty {}.",
      "a jpeg corrupted photo of a {}.",
      "a blurry photo of the {}.",
      "a photo of the {}.",
      "a good photo of the {}.",
      "a rendering of the {}.",
      "a {} in a video game.",
      "a photo of one {}.",
      "a doodle of a {}.",
      "a close-up photo of the {}.",
      "a photo of a {}.",
      "the origami {}.",
      "the {} in a video game.",
      "a sketch of a {}.",
      "a doodle of the {}.",
      "a origami {}.",
      "a low resolution photo of a {}.",
      "the toy {}.",
      "a rendition of the {}.",
      "a photo of the clean {}.",
      "a photo of a large {}.",
      "a rendition of a {}.",
      "a photo of a nice {}.",
      "a photo of a weird {}.",
      "a blurry photo of a {}.",
      "a cartoon {}.",
      "art of a {}.",
      "a sketch of the {}.",
      "a embroidered {}.",
      "a pixelated photo of a {}.",
      "itap of the {}.",
      "a jpeg corrupted photo of the {}.",
      "a good photo of a {}.",
      "a plushie {}.",
      "a photo of the nice {}.",
      "a photo of the small {}.",
      "a photo of the weird {}.",
      "the cartoon {}.",
      "art of the {}.",
      "a drawing of the {}.",
      "a photo of the large {}.",
      "a black and white photo of a {}.",
      "the plushie {}.",
      "a dark photo of a {}.",
      "itap of a {}.",
      "graffiti of the {}.",
      "a toy {}.",
      "itap of my {}.",
      "a photo of a cool {}.",
      "a photo of a small {}.",
      "a tattoo of the {}.",
  };
  return templates;
}

std::vector<std::string> load_templates(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path, "cannot open label-text templates (data.label_text.templates)");
  std::vector<std::string> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.find("{}") == std::string::npos) {
      throw IoError(path + ":" + std::to_string(number),
                    "template '" + line + "' has no {} placeholder for the label names");
    }
    out.push_back(line);
  }
  if (out.empty()) throw IoError(path, "no label-text templates in file");
  return out;
}

std::vector<std::string> make_templates(const LabelTextConfig& cfg) {
  if (cfg.templates.empty()) return clip_imagenet_templates();
  return load_templates(cfg.templates);
}

}  // namespace coca::data
