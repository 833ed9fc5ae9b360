// Class names of the labelled sources (folder, idx), indexed by label id, for zero-shot
// classifiers built from the names (paper §4.2, zero-shot image classification).
#pragma once

#include <string>
#include <vector>

#include "coca/data/sources.h"

namespace coca::data {

/// Names of each class, indexed by RawSample::label_ids (a class may have several names,
/// e.g. ImageNet's "tench, Tinca tinca"). Empty for sources without class labels.
std::vector<std::vector<std::string>> source_class_names(const Source& source);

}  // namespace coca::data
