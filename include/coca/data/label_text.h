// Labels as text (CoCa, arXiv 2205.01917 §4.1): the label names of an image-label sample
// (JFT-style) are shuffled, joined with ", " and put into a prompt sampled from CLIP's
// ImageNet templates, e.g. "a photo of the cat, animal.".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/data_config.h"

namespace coca::data {

/// The text of a labelled sample. The randomness (name order when cfg.shuffle, and the
/// template) comes from an RNG seeded by (seed, sample_position) alone, so a sample gets
/// the same text whatever thread or rank makes it, and a resumed run repeats it.
/// `{}` in the template is replaced by the joined names (every occurrence).
/// Example: label_text({"cat", "animal"}, 0, 17, {}, {"a photo of the {}."})
///   -> "a photo of the cat, animal." or "a photo of the animal, cat.".
/// Throws std::invalid_argument if `templates` is empty or `names` is empty.
std::string label_text(const std::vector<std::string>& names, uint64_t seed,
                       uint64_t sample_position, const LabelTextConfig& cfg,
                       const std::vector<std::string>& templates);

/// CLIP's 80 ImageNet prompt templates (OpenAI's prompt-engineering notebook, as in
/// open_clip's OPENAI_IMAGENET_TEMPLATES), with `{}` for the class name.
const std::vector<std::string>& clip_imagenet_templates();

/// Templates from a file, one per line (empty lines skipped, a trailing '\r' dropped).
/// Every line must contain `{}`: otherwise throws IoError naming file:line. A file with
/// no templates is an error as well.
std::vector<std::string> load_templates(const std::string& path);

/// The templates of `cfg`: load_templates(cfg.templates), or CLIP's when it is empty.
std::vector<std::string> make_templates(const LabelTextConfig& cfg);

}  // namespace coca::data
