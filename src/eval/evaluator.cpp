#include "coca/eval/evaluator.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "coca/common/error.h"
#include "coca/data/class_names.h"
#include "coca/data/image_transform.h"
#include "coca/data/label_text.h"
#include "coca/data/sources.h"
#include "coca/data/synthetic.h"
#include "coca/eval/caption_metrics.h"
#include "coca/eval/inference.h"
#include "coca/eval/retrieval.h"
#include "coca/eval/zero_shot.h"

namespace coca::eval {
namespace {

constexpr size_t kExamples = 5;

/// Calls `fn(batch_samples, images [n, 3, S, S])` for consecutive batches of the source's
/// samples (at most `max_samples` when > 0), in shard order; `keep` filters samples.
template <typename Keep, typename Fn>
int64_t for_each_batch(const data::Source& source, const data::EvalTransform& transform,
                       int64_t batch_size, int64_t max_samples, Keep keep, Fn fn) {
  std::vector<data::RawSample> samples;
  std::vector<torch::Tensor> images;
  int64_t count = 0;
  auto flush = [&] {
    if (samples.empty()) return;
    fn(samples, torch::stack(images));
    samples.clear();
    images.clear();
  };
  const auto ignore = [](data::SkipReason, const std::string&, const std::string&,
                         const std::string&) {};
  for (const auto& shard : source.shards()) {
    auto reader = source.open(shard.index, ignore);
    data::RawSample s;
    while (reader->next(s)) {
      if (max_samples > 0 && count >= max_samples) break;
      if (!keep(s)) continue;
      images.push_back(transform(s));
      samples.push_back(std::move(s));
      s = data::RawSample();
      ++count;
      if (static_cast<int64_t>(samples.size()) >= batch_size) flush();
    }
    if (max_samples > 0 && count >= max_samples) break;
  }
  flush();
  return count;
}

/// Restores the model's training mode on scope exit.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(model::CoCa& m) : model_(m), was_training_(m->is_training()) {
    model_->eval();
  }
  ~EvalModeGuard() { model_->train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  model::CoCa& model_;
  bool was_training_;
};

}  // namespace

double EvalResults::at(const std::string& name) const {
  for (const auto& [k, v] : metrics) {
    if (k == name) return v;
  }
  throw std::out_of_range("EvalResults: no metric '" + name + "'");
}

bool eval_configured(const EvalConfig& cfg) {
  return !cfg.zero_shot.type.empty() || !cfg.retrieval.type.empty() ||
         !cfg.captioning.type.empty();
}

EvalResults evaluate(model::CoCa& model, const data::Tokenizer& tokenizer,
                     const config::RunConfig& cfg) {
  const auto& ev = cfg.eval;
  EvalModeGuard mode(model);
  torch::NoGradGuard no_grad;
  const auto& t = cfg.data.eval_transform;
  const data::EvalTransform transform(t, t.image_size > 0 ? t.image_size
                                                          : cfg.model.vision.image_size);
  const int64_t batch = ev.batch_size;
  EvalResults out;

  if (!ev.zero_shot.type.empty()) {
    const auto source = data::make_source(ev.zero_shot, "eval.zero_shot");
    const auto classes = data::source_class_names(*source);
    if (classes.empty()) {
      throw ConfigError("eval.zero_shot: source '" + ev.zero_shot.path +
                        "' has no class names (set eval.zero_shot.class_names)");
    }
    const auto templates =
        ev.templates.empty() ? data::clip_imagenet_templates() : data::load_templates(ev.templates);
    const auto class_emb = class_embeddings(
        classes, templates,
        [&](const std::vector<std::string>& texts) {
          return embed_texts(model, tokenizer, texts, batch);
        },
        batch);
    std::vector<torch::Tensor> features;
    std::vector<int64_t> labels;
    // Single-label images only: top-1 against one of several labels an image carries
    // (e.g. a synthetic scene with a red circle left of a blue star) is ill-posed, since
    // nothing in the pixels says which label is "the" label.
    for_each_batch(
        *source, transform, batch, ev.max_samples,
        [&](const data::RawSample& s) {
          return s.label_ids.size() == 1 && s.label_ids[0] >= 0 &&
                 s.label_ids[0] < static_cast<int64_t>(classes.size());
        },
        [&](const std::vector<data::RawSample>& samples, const torch::Tensor& images) {
          features.push_back(embed_images(model, images, batch));
          for (const auto& s : samples) labels.push_back(s.label_ids[0]);
        });
    if (labels.empty()) {
      throw ConfigError("eval.zero_shot: no labelled samples in '" + ev.zero_shot.path + "'");
    }
    const auto r = zero_shot_accuracy(torch::cat(features), class_emb, torch::tensor(labels));
    out.metrics.emplace_back("zero_shot_top1", r.top1);
    out.metrics.emplace_back("zero_shot_top5", r.top5);
    out.metrics.emplace_back("zero_shot_images", static_cast<double>(r.images));
  }

  if (!ev.retrieval.type.empty()) {
    const auto source = data::make_source(ev.retrieval, "eval.retrieval");
    std::vector<torch::Tensor> image_features;
    std::vector<std::string> texts;
    std::vector<int64_t> text_image;
    int64_t image_index = 0;
    for_each_batch(
        *source, transform, batch, ev.max_samples,
        [](const data::RawSample& s) { return !s.captions.empty(); },
        [&](const std::vector<data::RawSample>& samples, const torch::Tensor& images) {
          image_features.push_back(embed_images(model, images, batch));
          for (const auto& s : samples) {
            for (const auto& c : s.captions) {
              texts.push_back(c);
              text_image.push_back(image_index);
            }
            ++image_index;
          }
        });
    if (texts.empty()) {
      throw ConfigError("eval.retrieval: no captioned samples in '" + ev.retrieval.path + "'");
    }
    // Captions that are the same string are one query with several right images.
    const auto groups = identical_text_groups(texts);
    const auto r = retrieval_recall(torch::cat(image_features),
                                    embed_texts(model, tokenizer, texts, batch),
                                    torch::tensor(text_image), groups);
    const char* ks[] = {"r1", "r5", "r10"};
    for (int i = 0; i < 3; ++i) out.metrics.emplace_back(std::string("i2t_") + ks[i], r.image_to_text[i]);
    for (int i = 0; i < 3; ++i) out.metrics.emplace_back(std::string("t2i_") + ks[i], r.text_to_image[i]);
    out.metrics.emplace_back("retrieval_images", static_cast<double>(r.images));
    out.metrics.emplace_back("retrieval_texts", static_cast<double>(r.texts));
    out.metrics.emplace_back("retrieval_distinct_texts",
                             static_cast<double>(groups.max().item<int64_t>() + 1));
  }

  if (!ev.captioning.type.empty()) {
    const auto source = data::make_source(ev.captioning, "eval.captioning");
    std::vector<std::string> candidates;
    std::vector<std::vector<std::string>> references;
    uint64_t batch_index = 0;
    for_each_batch(
        *source, transform, batch, ev.max_samples,
        [](const data::RawSample& s) { return !s.captions.empty(); },
        [&](const std::vector<data::RawSample>& samples, const torch::Tensor& images) {
          const auto captions =
              caption_images(model, tokenizer, images, ev.generate, batch_index++, batch);
          for (size_t i = 0; i < samples.size(); ++i) {
            if (out.examples.size() < kExamples) {
              out.examples.push_back({samples[i].key, captions[i].text, samples[i].captions[0]});
            }
            candidates.push_back(captions[i].text);
            references.push_back(samples[i].captions);
          }
        });
    if (candidates.empty()) {
      throw ConfigError("eval.captioning: no captioned samples in '" + ev.captioning.path + "'");
    }
    const auto s = caption_scores(candidates, references);
    out.metrics.emplace_back("bleu1", s.bleu[0]);
    out.metrics.emplace_back("bleu4", s.bleu[3]);
    out.metrics.emplace_back("cider", s.cider);
    out.metrics.emplace_back("captioning_images", static_cast<double>(candidates.size()));
  }
  return out;
}

std::string format_results(const EvalResults& results) {
  std::string out = fmt::format("{:<24} {:>10}\n", "metric", "value");
  for (const auto& [k, v] : results.metrics) out += fmt::format("{:<24} {:>10.4f}\n", k, v);
  for (const auto& e : results.examples) {
    out += fmt::format("example {}: \"{}\" (reference: \"{}\")\n", e.key, e.generated, e.reference);
  }
  return out;
}

std::string results_json(const EvalResults& results) {
  nlohmann::ordered_json j;
  j["metrics"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : results.metrics) j["metrics"][k] = v;
  j["examples"] = nlohmann::ordered_json::array();
  for (const auto& e : results.examples) {
    j["examples"].push_back({{"key", e.key}, {"generated", e.generated}, {"reference", e.reference}});
  }
  return j.dump(2);
}

}  // namespace coca::eval
