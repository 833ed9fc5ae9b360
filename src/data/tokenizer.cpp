// Tokenizer base (batch encoding with open_clip's truncation rule) and the factory.
#include "coca/data/tokenizer.h"

#include <torch/torch.h>

#include <filesystem>

#include "coca/common/error.h"
#include "data/detail/sentencepiece.h"

namespace coca::data {

std::vector<int64_t> Tokenizer::encode_padded(const std::string& text,
                                              int64_t context_length) const {
  if (context_length < 1 || (add_bos_ && add_eos_ && context_length < 2)) {
    throw std::invalid_argument("tokenizer: context_length " + std::to_string(context_length) +
                                " cannot hold the start/end tokens");
  }
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(context_length));
  if (add_bos_) ids.push_back(bos_id());
  const std::vector<int64_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  if (add_eos_) ids.push_back(eos_id());
  if (static_cast<int64_t>(ids.size()) > context_length) {
    ids.resize(static_cast<size_t>(context_length));
    if (add_eos_) ids.back() = eos_id();  // the end token survives truncation
  }
  ids.resize(static_cast<size_t>(context_length), pad_id());
  return ids;
}

torch::Tensor Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                      int64_t context_length) const {
  auto out = torch::empty({static_cast<int64_t>(texts.size()), context_length}, torch::kLong);
  auto* data = out.data_ptr<int64_t>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto row = encode_padded(texts[i], context_length);
    std::copy(row.begin(), row.end(), data + static_cast<int64_t>(i) * context_length);
  }
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& cfg,
                                          const std::string& key_path) {
  const std::string key = key_path + ".path";
  if (cfg.path.empty()) {
    throw ConfigError(key + " is empty: set it to a " +
                      (cfg.type == "clip_bpe" ? std::string("CLIP BPE vocabulary (.txt.gz)")
                                              : std::string("SentencePiece model (.model)")));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(cfg.path, ec)) {
    throw ConfigError(key + ": tokenizer file '" + cfg.path +
                      "' not found (paths in a config file are relative to that file)");
  }
  if (cfg.type == "clip_bpe") {
    try {
      return make_clip_bpe_tokenizer(cfg.path, cfg.add_bos, cfg.add_eos);
    } catch (const IoError& e) {
      throw ConfigError(key + ": " + e.what());
    }
  }
  if (cfg.type == "sentencepiece") {
    return detail::make_sentencepiece_tokenizer(cfg.path, cfg.add_bos, cfg.add_eos, key);
  }
  throw ConfigError(key_path + ".type: expected sentencepiece or clip_bpe, got '" + cfg.type +
                    "'");
}

}  // namespace coca::data
