// The evaluation suite of a run (CoCa arXiv 2205.01917 §4.2-4.3): zero-shot
// classification, image-text retrieval and captioning (BLEU-4, CIDEr-D), each on the set
// the config's `eval` section names, with the eval image transform.
//
//   auto results = eval::evaluate(model, *tokenizer, cfg);
//   std::cout << eval::format_results(results);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "coca/config/run_config.h"
#include "coca/data/tokenizer.h"
#include "coca/model/coca.h"

namespace coca::eval {

/// One example caption of the captioning set.
struct CaptionExample {
  std::string key;        ///< sample key
  std::string generated;  ///< the model's caption
  std::string reference;  ///< the first reference caption
};

struct EvalResults {
  /// Named numbers in a fixed order: zero_shot_top1, zero_shot_top5, zero_shot_images;
  /// i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10, retrieval_images,
  /// retrieval_texts, retrieval_distinct_texts (captions that are the same string count as
  /// one query with several right images); bleu1, bleu4, cider, captioning_images (only
  /// the configured tasks).
  std::vector<std::pair<std::string, double>> metrics;
  std::vector<CaptionExample> examples;  ///< the first few captioned images

  /// The value of `name`; throws std::out_of_range when it is absent.
  double at(const std::string& name) const;
};

/// True when any of eval.zero_shot / retrieval / captioning has a source type.
bool eval_configured(const EvalConfig& cfg);

/// Runs every configured task over at most eval.max_samples images per set, eval.batch_size
/// at a time, without gradients and in eval mode (the model's mode is restored after).
///   zero-shot: labelled source; class names from the source (synthetic:
///     data::synthetic_class_names()); prompts from eval.templates or CLIP's 80; the
///     class of a sample is its one label id (samples with no label or with several
///     labels are skipped: top-1 against one of several labels is ill-posed).
///   retrieval: every caption of every image (retrieval_recall).
///   captioning: generate() with eval.generate, scored against all captions of the image.
/// Throws ConfigError for a source that cannot be built or has no class names / captions.
EvalResults evaluate(model::CoCa& model, const data::Tokenizer& tokenizer,
                     const config::RunConfig& cfg);

/// A two-column text table of the metrics, then the example captions.
std::string format_results(const EvalResults& results);
/// {"metrics": {name: value, ...}, "examples": [{key, generated, reference}, ...]}.
std::string results_json(const EvalResults& results);

}  // namespace coca::eval
