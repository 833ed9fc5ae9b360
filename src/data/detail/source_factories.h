// One factory per source type, called by make_source (src/data/sources.cpp). Each
// lives in the .cpp of its source; `key_path` (e.g. "data.sources.0") is used in
// ConfigError messages.
#pragma once

#include <memory>
#include <string>

#include "coca/data/sources.h"

namespace coca::data::detail {

std::unique_ptr<Source> make_webdataset_source(const SourceConfig& cfg,
                                               const std::string& key_path);
std::unique_ptr<Source> make_synthetic_source(const SourceConfig& cfg,
                                              const std::string& key_path);
std::unique_ptr<Source> make_manifest_source(const SourceConfig& cfg,
                                             const std::string& key_path);
std::unique_ptr<Source> make_folder_source(const SourceConfig& cfg, const std::string& key_path);
std::unique_ptr<Source> make_coco_source(const SourceConfig& cfg, const std::string& key_path);
std::unique_ptr<Source> make_karpathy_source(const SourceConfig& cfg,
                                             const std::string& key_path);
std::unique_ptr<Source> make_idx_source(const SourceConfig& cfg, const std::string& key_path);

}  // namespace coca::data::detail
