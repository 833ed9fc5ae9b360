// Factories of the indexable sources (manifest, folder, COCO, Karpathy, IDX). Declared
// here until they join the other factories in source_factories.h; make_source()
// dispatches on SourceConfig::type to them.
#pragma once

#include <memory>
#include <string>

#include "coca/data/sources.h"

namespace coca::data::detail {

/// TSV/CSV manifest with a header row (open_clip's CsvDataset layout).
std::unique_ptr<Source> make_manifest_source(const SourceConfig& cfg, const std::string& key_path);
/// ImageNet-style class folders `root/<class_id>/<image>`.
std::unique_ptr<Source> make_folder_source(const SourceConfig& cfg, const std::string& key_path);
/// COCO captions json (`captions_train2017.json`).
std::unique_ptr<Source> make_coco_source(const SourceConfig& cfg, const std::string& key_path);
/// Karpathy split json (`dataset_coco.json`, `dataset_flickr30k.json`).
std::unique_ptr<Source> make_karpathy_source(const SourceConfig& cfg, const std::string& key_path);
/// MNIST-style IDX image + label files, gzip-compressed or not.
std::unique_ptr<Source> make_idx_source(const SourceConfig& cfg, const std::string& key_path);

}  // namespace coca::data::detail
