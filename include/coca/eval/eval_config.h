// Evaluation and generation configuration (no torch include).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/data_config.h"

namespace coca::eval {

/// Generation settings (greedy when beams = 1 and top_k = 0 and top_p = 1).
struct GenerateConfig {
  int64_t beams = 1;              ///< beam width
  int64_t max_len = 30;           ///< maximum generated tokens
  int64_t min_len = 0;            ///< end token is blocked before this many tokens
  double length_penalty = 1.0;    ///< beam score = logp / len^length_penalty
  int64_t top_k = 0;              ///< sample from the k most likely tokens; 0 = off
  double top_p = 1.0;             ///< nucleus sampling mass; 1 = off
  double temperature = 1.0;       ///< sampling temperature
  double repetition_penalty = 1.0;  ///< > 1 discourages repeated tokens
  bool kv_cache = true;           ///< cache keys/values while decoding
};

/// A source config that is off (type empty) until a type is set.
inline data::SourceConfig disabled_source() {
  data::SourceConfig s;
  s.type.clear();
  return s;
}

struct EvalConfig {
  /// labelled set for zero-shot classification (type empty = off)
  data::SourceConfig zero_shot = disabled_source();
  std::string templates;          ///< prompt templates file; empty = CLIP's 80 ImageNet templates
  /// image-caption set for retrieval (type empty = off)
  data::SourceConfig retrieval = disabled_source();
  /// image-caption set for CIDEr/BLEU (type empty = off)
  data::SourceConfig captioning = disabled_source();
  /// labelled validation set of a classify-task run, scored with its classifier head (type empty = off)
  data::SourceConfig classification = disabled_source();
  /// caption finetuning: warn when zero-shot top-1 falls below this fraction of the value
  /// before finetuning (needs eval.zero_shot); 0 = never
  double collapse_warn_fraction = 0.5;
  int64_t batch_size = 64;        ///< evaluation batch
  int64_t max_samples = 0;        ///< cap per set; 0 = all
  GenerateConfig generate;
};

}  // namespace coca::eval
