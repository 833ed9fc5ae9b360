// Names of the skip reasons, as they appear in logs and statistics.
#include "coca/data/sample.h"

namespace coca::data {

const char* to_string(SkipReason reason) {
  switch (reason) {
    case SkipReason::corrupt_image: return "corrupt_image";
    case SkipReason::empty_text: return "empty_text";
    case SkipReason::missing_file: return "missing_file";
    case SkipReason::truncated_shard: return "truncated_shard";
    case SkipReason::other: return "other";
  }
  return "unknown";
}

}  // namespace coca::data
