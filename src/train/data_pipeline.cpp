#include "coca/train/data_pipeline.h"

#include <fmt/format.h>

#include "coca/common/error.h"
#include "coca/data/image_transform.h"
#include "coca/data/label_text.h"

namespace coca::train {

int64_t text_context_length(const config::RunConfig& cfg) {
  return cfg.data.tokenizer.context_length > 0 ? cfg.data.tokenizer.context_length
                                               : cfg.model.text.context_length;
}

std::vector<std::shared_ptr<const data::Source>> make_training_sources(
    const config::RunConfig& cfg) {
  if (cfg.data.sources.empty()) {
    throw ConfigError("data.sources: no training source is configured");
  }
  std::vector<std::shared_ptr<const data::Source>> sources;
  for (size_t i = 0; i < cfg.data.sources.size(); ++i) {
    sources.push_back(data::make_source(cfg.data.sources[i], fmt::format("data.sources.{}", i)));
  }
  return sources;
}

data::LoaderHooks make_training_hooks(const config::RunConfig& cfg,
                                      std::shared_ptr<const data::Tokenizer> tokenizer) {
  data::LoaderHooks h;
  const int64_t size = cfg.data.train_transform.image_size > 0 ? cfg.data.train_transform.image_size
                                                               : cfg.model.vision.image_size;
  const data::TrainTransform transform(cfg.data.train_transform, size);
  h.image_transform = [transform](const data::RawSample& s, uint64_t seed) {
    return transform(s, seed);
  };
  const auto label_cfg = cfg.data.label_text;
  const auto templates = data::make_templates(cfg.data.label_text);
  h.make_text = data::make_text_hook(
      [label_cfg, templates](const std::vector<std::string>& names, uint64_t seed,
                             int64_t position) {
        return data::label_text(names, seed, static_cast<uint64_t>(position), label_cfg,
                                templates);
      });
  const int64_t T = text_context_length(cfg);
  h.tokenize = [tokenizer, T](const std::vector<std::string>& texts) {
    return tokenizer->encode_batch(texts, T);
  };
  return h;
}

}  // namespace coca::train
