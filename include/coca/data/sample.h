// One raw sample as it comes out of a source, before decoding and tokenisation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coca::data {

struct RawSample {
  std::string key;                  ///< unique within the source (webdataset key, file path, id)
  std::string image_name;           ///< file or member name, for messages and format sniffing
  std::vector<uint8_t> image_bytes; ///< encoded image (jpg/png/webp/...); empty if `pixels` is set
  /// Already decoded pixels, HWC uint8 RGB (IDX and synthetic sources); empty otherwise.
  std::vector<uint8_t> pixels;
  int64_t height = 0;               ///< of `pixels`
  int64_t width = 0;                ///< of `pixels`
  std::vector<std::string> captions;  ///< zero or more captions (COCO has ~5 per image)
  std::vector<std::string> labels;    ///< label names (already mapped from ids)
  std::vector<int64_t> label_ids;     ///< label ids as stored, when the source has them
};

/// Why a sample was skipped; counted per kind and reported, never fatal.
enum class SkipReason { corrupt_image, empty_text, missing_file, truncated_shard, other };

const char* to_string(SkipReason reason);

}  // namespace coca::data
