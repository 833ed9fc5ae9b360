// Caption generation: greedy, beam search (length penalty, min/max length, n-best) and
// top-k / top-p sampling with temperature and repetition penalty, all batched. The
// search is written against StepModel, which returns next-token logits for a batch of
// prefixes, so the same code drives the cached and the uncached CoCa decoders.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "coca/eval/eval_config.h"

namespace coca::eval {

/// One decoding step of a model for N rows (images or beams).
class StepModel {
 public:
  virtual ~StepModel() = default;
  /// tokens: [N, L] int64, every row a prefix starting with BOS -> [N, V] logits of the
  /// token at position L. Called with L = 1, 2, ... in order; a cached model only needs
  /// the last column.
  virtual torch::Tensor next_logits(const torch::Tensor& tokens) = 0;
  /// Keeps rows `index` [N'] (int64, may repeat) of any per-row state, in that order:
  /// beam search calls it after each step; finished rows are not removed.
  virtual void select(const torch::Tensor& index) = 0;
};

struct GenerateResult {
  /// Best sequence per input row, without BOS and without the end token.
  std::vector<std::vector<int64_t>> tokens;
  /// Its score: sum of log-probabilities / length^length_penalty (beam), sum of
  /// log-probabilities (greedy and sampling).
  std::vector<double> scores;
  /// Beam search: up to `beams` finished hypotheses per row, best first.
  std::vector<std::vector<std::vector<int64_t>>> nbest;
};

struct SpecialTokens {
  int64_t bos = 0;
  int64_t eos = 0;
};

/// Generates for `rows` inputs. Greedy when beams == 1 and top_k == 0 and top_p == 1;
/// sampling when top_k > 0 or top_p < 1 (seeded by `seed`); beam search when beams > 1.
/// The model's rows start as one per input; beam search first expands them with
/// select() to rows * beams.
GenerateResult generate(StepModel& model, int64_t rows, const GenerateConfig& cfg,
                        const SpecialTokens& special, uint64_t seed = 0);

}  // namespace coca::eval
