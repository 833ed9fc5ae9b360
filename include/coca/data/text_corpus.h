// The text a dataset shows the model, written out for tokenizer training (`coca
// tokenizer train --data`): every caption of caption sources, and for label sources the
// label names put into prompt templates as training does (paper §4.1), plus every
// template with each class name once, so zero-shot prompts are covered too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/data_config.h"

namespace coca::data {

struct TextCorpusStats {
  int64_t samples = 0;  ///< samples read
  int64_t lines = 0;    ///< lines written
};

/// Appends one sentence per line to `out_path` from `sources`, reading at most
/// `max_samples` samples per source (0 = all). Throws IoError when the file cannot be
/// written, ConfigError/DataError from the sources.
TextCorpusStats write_text_corpus(const std::vector<SourceConfig>& sources,
                                  const LabelTextConfig& label_text, uint64_t seed,
                                  int64_t max_samples, const std::string& out_path);

}  // namespace coca::data
