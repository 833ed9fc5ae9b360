// SentencePiece tokenizer construction with the config key named in errors. Private to
// src/data.
#pragma once

#include <memory>
#include <string>

#include "coca/data/tokenizer.h"

namespace coca::data::detail {

/// As make_sentencepiece_tokenizer; errors name `key` (e.g. "data.tokenizer.path").
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path,
                                                        bool add_bos, bool add_eos,
                                                        const std::string& key);

}  // namespace coca::data::detail
