// Synthetic captioned images (source type `synthetic`, `coca data synth`): 1-3 flat
// coloured shapes in one or two groups on a muted background, with an English caption
// ("two small red circles to the left of a large blue square") and labels, drawn from
// (seed, index) alone, so any thread or rank produces the same sample. Small enough for a
// tiny model to learn on a CPU in minutes; used by the integration tests and the demo.
//
// Classes: "<colour> <shape>" for every colour x shape pair (synthetic_class_names(),
// id = colour * shapes + shape). A sample's labels are the distinct classes of its
// groups, the first-mentioned group first: labels[0] / label_ids[0] is the sample's class
// for single-label zero-shot classification over synthetic_class_names().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/image_transform.h"
#include "coca/data/sample.h"

namespace coca::data {

/// circle, square, triangle, star.
const std::vector<std::string>& synthetic_shapes();
/// red, green, blue, yellow, purple, orange, white.
const std::vector<std::string>& synthetic_colours();
/// RGB of each colour of synthetic_colours(): every pixel of an object's interior has
/// exactly this value. Backgrounds are low-saturation mid greys (channels 28..202 and
/// spread <= 64), far from all of these.
const std::vector<std::array<uint8_t, 3>>& synthetic_colour_rgb();
/// "<colour> <shape>", id = colour_index * synthetic_shapes().size() + shape_index.
std::vector<std::string> synthetic_class_names();

/// One drawn object (pixel coordinates, origin top-left, x right, y down).
struct SynthObject {
  int64_t shape = 0;   ///< index into synthetic_shapes()
  int64_t colour = 0;  ///< index into synthetic_colours()
  bool large = false;  ///< "large" or "small" in the caption
  int64_t group = 0;   ///< 0 = first-mentioned group, 1 = second
  double x = 0;        ///< centre
  double y = 0;
  double radius = 0;   ///< nominal radius; the shape lies within +-1.15 * radius per axis
};

struct SynthScene {
  Image image;                       ///< size x size RGB
  std::string caption;
  std::vector<SynthObject> objects;
  std::string relation;              ///< "" (one group) | "to the left of" | "to the right of" | "above" | "below"
  std::vector<int64_t> label_ids;    ///< distinct classes, first group first
  std::vector<std::string> labels;   ///< their names
};

/// Draws sample `index` of the stream `seed` at `size` x `size` pixels (size >= 16).
SynthScene make_synthetic_scene(uint64_t seed, int64_t index, int64_t size);

/// The scene as a RawSample (key = 8-digit index, pixels set, one caption, labels).
RawSample synthetic_sample(uint64_t seed, int64_t index, int64_t size);

/// {"caption", "labels", "label_ids", "relation", "objects": [{shape, colour, size, x,
/// y, radius}]} as compact JSON.
std::string synthetic_scene_json(const SynthScene& scene);

/// What write_synthetic_dataset produced.
struct SynthDatasetInfo {
  std::vector<std::string> shards;  ///< tar paths in order
  std::string classes_file;         ///< <dir>/classes.txt (`id<TAB>name`)
  int64_t samples = 0;
};

/// Writes samples 0..samples-1 of stream `seed` as WebDataset shards
/// `<dir>/<split>-NNNNN.tar` (members <key>.png, .txt caption, .cls label ids one per
/// line, .json scene) plus `<dir>/classes.txt`.
SynthDatasetInfo write_synthetic_dataset(const std::string& dir, int64_t samples, uint64_t seed,
                                         int64_t size, int64_t shard_size,
                                         const std::string& split);

}  // namespace coca::data
