// Caption metrics as the COCO caption evaluation computes them: BLEU-1..4 (Papineni et
// al. 2002, corpus level, "closest" reference length) and CIDEr-D (Vedantam et al. 2015,
// arXiv 1411.5726: TF-IDF n-gram vectors with document frequencies from the reference
// set, clipped numerator, Gaussian length penalty sigma = 6, x10).
//
//   auto scores = caption_scores({{"a red circle"}}, {{"a red circle", "one red circle"}});
//   scores.cider, scores.bleu[3]
#pragma once

#include <array>
#include <string>
#include <vector>

namespace coca::eval {

/// COCO-style tokenisation: lower-case, punctuation removed (the PTB tokenizer's output
/// with the punctuation tokens the COCO evaluation drops), split on whitespace.
std::vector<std::string> caption_tokens(const std::string& text);

struct CaptionScores {
  std::array<double, 4> bleu{};  ///< BLEU-1 .. BLEU-4, corpus level, in [0, 1]
  double cider = 0;              ///< CIDEr-D, mean over images (x10 as in COCO)
  std::vector<double> cider_per_image;
};

/// candidates[i]: the generated caption of image i; references[i]: its reference
/// captions (at least one each). Throws std::invalid_argument on mismatched sizes or an
/// image without references.
CaptionScores caption_scores(const std::vector<std::string>& candidates,
                             const std::vector<std::vector<std::string>>& references);

}  // namespace coca::eval
