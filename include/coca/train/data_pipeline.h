// The training data pipeline of a run config: sources, tokenizer and the loader hooks
// (train transform, captions or labels-as-text, tokenisation). Shared by the trainer and
// `coca bench data`, so the benchmark measures exactly what training runs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "coca/config/run_config.h"
#include "coca/data/loader.h"
#include "coca/data/sources.h"
#include "coca/data/tokenizer.h"

namespace coca::train {

/// Tokens per text: data.tokenizer.context_length, or model.text.context_length when 0.
int64_t text_context_length(const config::RunConfig& cfg);

/// data.sources, built (ConfigError naming data.sources.N on a bad entry).
std::vector<std::shared_ptr<const data::Source>> make_training_sources(
    const config::RunConfig& cfg);

/// The per-sample work of training: TrainTransform at the train image size (or the
/// model's), captions or label text (data.label_text templates), tokenisation.
data::LoaderHooks make_training_hooks(const config::RunConfig& cfg,
                                      std::shared_ptr<const data::Tokenizer> tokenizer);

}  // namespace coca::train
