// `coca data inspect` and `coca data convert`: read any source front to back, count what
// is in it and what is wrong with it, and rewrite it as WebDataset shards.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/data_config.h"
#include "coca/data/sample.h"

namespace coca::data {

/// One decoded example for display.
struct SampleSummary {
  std::string key;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<std::string> captions;
  std::vector<std::string> labels;
};

struct SourceReport {
  std::string name;
  std::string type;
  int64_t shards = 0;
  int64_t samples = 0;                     ///< readable samples (decoded when `decode`)
  std::array<int64_t, 5> skipped{};        ///< per SkipReason
  std::vector<std::string> problems;       ///< the first problems, "shard [key]: what"
  std::vector<SampleSummary> examples;     ///< the first samples
};

/// Reads `cfg` (at most `max_samples` samples, 0 = all), decoding every image when
/// `decode` (corrupt ones are counted as corrupt_image), keeping `examples` examples and
/// the first 20 problems.
SourceReport inspect_source(const SourceConfig& cfg, const std::string& key_path,
                            int64_t max_samples, int64_t examples, bool decode);

/// Human-readable report.
std::string format_report(const SourceReport& report);

struct ConvertStats {
  std::vector<std::string> shards;
  std::string classes_file;  ///< written when the source has class names, else empty
  int64_t samples = 0;
  std::array<int64_t, 5> skipped{};
};

/// A source's sample key made usable as a WebDataset key (whose file-name part may hold no
/// dot): "stamps/frog-1.png" -> "stamps/frog-1_png", "train.gz#12" -> "train_gz#12".
std::string webdataset_key(const std::string& key);

/// Writes the source as WebDataset shards `<out_dir>/<prefix>-NNNNN.tar` (image bytes kept
/// as they are; decoded-pixel sources as PNG; txt = first caption, cls = label ids, json =
/// every caption and label; keys through webdataset_key) and, when the source has class names, `<out_dir>/classes.txt`.
/// Corrupt images are skipped when `decode` (checked by decoding before writing).
/// `alpha_background` >= 0 or `max_side` > 0: encoded images are stored through
/// flatten_image (transparency composited onto that grey level, longer side shrunk).
ConvertStats convert_source(const SourceConfig& cfg, const std::string& key_path,
                            const std::string& out_dir, const std::string& prefix,
                            int64_t shard_size, int64_t max_samples, bool decode,
                            int alpha_background = -1, int64_t max_side = 0);

}  // namespace coca::data
