#include "coca/eval/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace coca::eval {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// CTRL's repetition penalty (Keskar et al. 2019, as Hugging Face applies it): the logit
/// of every token already generated is divided by `penalty` when positive and
/// multiplied by it when negative. `tokens` [N, L] includes the BOS column, skipped.
void apply_repetition_penalty(torch::Tensor& logits, const torch::Tensor& tokens, double penalty) {
  if (penalty == 1.0 || tokens.size(1) <= 1) return;
  const auto generated = tokens.slice(1, 1);
  auto prev = logits.gather(1, generated);
  prev = torch::where(prev > 0, prev / penalty, prev * penalty);
  logits.scatter_(1, generated, prev);
}

/// Shared logit processing: penalty, end token blocked before min_len tokens.
torch::Tensor process(torch::Tensor logits, const torch::Tensor& tokens, const GenerateConfig& cfg,
                      const SpecialTokens& special) {
  logits = logits.to(torch::kFloat).clone();
  apply_repetition_penalty(logits, tokens, cfg.repetition_penalty);
  const int64_t generated = tokens.size(1) - 1;
  if (generated < cfg.min_len) logits.select(1, special.eos).fill_(-std::numeric_limits<float>::infinity());
  return logits;
}

/// Keeps the k largest logits of each row (others -inf).
torch::Tensor top_k_filter(const torch::Tensor& logits, int64_t k) {
  if (k <= 0 || k >= logits.size(1)) return logits;
  const auto kth = std::get<0>(logits.topk(k, 1)).select(1, k - 1).unsqueeze(1);
  return logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
}

/// Keeps the smallest set of most likely tokens whose probability reaches p (the token
/// that crosses p is kept; at least one token always stays).
torch::Tensor top_p_filter(const torch::Tensor& logits, double p) {
  if (p >= 1.0) return logits;
  const auto sorted = logits.sort(1, /*descending=*/true);
  const auto& values = std::get<0>(sorted);
  const auto& order = std::get<1>(sorted);
  const auto cumulative = values.softmax(1).cumsum(1);
  // Remove a token when the mass before it already reaches p.
  auto remove = (cumulative - values.softmax(1)) >= p;
  remove.select(1, 0).fill_(false);
  const auto mask = torch::zeros_like(remove).scatter(1, order, remove);
  return logits.masked_fill(mask, -std::numeric_limits<float>::infinity());
}

std::vector<int64_t> strip(const torch::Tensor& row, int64_t eos) {
  std::vector<int64_t> out;
  const auto acc = row.accessor<int64_t, 1>();
  for (int64_t i = 1; i < row.size(0); ++i) {  // skip BOS
    if (acc[i] == eos) break;
    out.push_back(acc[i]);
  }
  return out;
}

GenerateResult greedy_or_sample(StepModel& model, int64_t rows, const GenerateConfig& cfg,
                                const SpecialTokens& special, uint64_t seed) {
  const bool sample = cfg.top_k > 0 || cfg.top_p < 1.0;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto tokens = torch::full({rows, 1}, special.bos, torch::kLong);
  auto finished = torch::zeros({rows}, torch::kBool);
  auto scores = torch::zeros({rows}, torch::kDouble);
  for (int64_t step = 0; step < cfg.max_len; ++step) {
    auto logits = process(model.next_logits(tokens).cpu(), tokens, cfg, special);
    torch::Tensor next, logp;
    if (sample) {
      auto filtered = top_p_filter(top_k_filter(logits / cfg.temperature, cfg.top_k), cfg.top_p);
      logp = filtered.log_softmax(1);
      next = torch::multinomial(logp.exp(), 1, /*replacement=*/false, gen).squeeze(1);
    } else {
      logp = logits.log_softmax(1);
      next = logp.argmax(1);
    }
    const auto chosen = logp.gather(1, next.unsqueeze(1)).squeeze(1).to(torch::kDouble);
    scores += torch::where(finished, torch::zeros_like(chosen), chosen);
    next = torch::where(finished, torch::full_like(next, special.eos), next);
    tokens = torch::cat({tokens, next.unsqueeze(1)}, 1);
    finished = finished.logical_or(next.eq(special.eos));
    if (finished.all().item<bool>()) break;
  }
  GenerateResult r;
  for (int64_t i = 0; i < rows; ++i) {
    r.tokens.push_back(strip(tokens[i], special.eos));
    r.scores.push_back(scores[i].item<double>());
  }
  return r;
}

struct Hypothesis {
  double score;
  std::vector<int64_t> tokens;
};

/// Beam search with "early stopping": a row is done once it holds `beams` finished
/// hypotheses. A hypothesis's score is its summed log-probability (end token included)
/// divided by length^length_penalty, length = generated tokens without the end token
/// (at least 1). With beams = 1 this is exactly greedy decoding.
GenerateResult beam_search(StepModel& model, int64_t rows, const GenerateConfig& cfg,
                           const SpecialTokens& special) {
  const int64_t K = cfg.beams;
  model.select(torch::arange(rows, torch::kLong).repeat_interleave(K));
  auto tokens = torch::full({rows * K, 1}, special.bos, torch::kLong);
  // Only the first beam of each row is alive at the start (the others are copies).
  auto beam_scores = torch::full({rows, K}, kNegInf, torch::kDouble);
  beam_scores.select(1, 0).fill_(0.0);
  std::vector<std::vector<Hypothesis>> hyps(static_cast<size_t>(rows));
  std::vector<bool> done(static_cast<size_t>(rows), false);
  auto normalised = [&](double sum, int64_t length) {
    return sum / std::pow(static_cast<double>(std::max<int64_t>(length, 1)), cfg.length_penalty);
  };
  for (int64_t step = 0; step < cfg.max_len; ++step) {
    const auto logits = process(model.next_logits(tokens).cpu(), tokens, cfg, special);
    const int64_t V = logits.size(1);
    const auto logp = logits.log_softmax(1).to(torch::kDouble);
    const auto cand = (beam_scores.view({rows * K, 1}) + logp).view({rows, K * V});
    const auto top = cand.topk(std::min<int64_t>(2 * K, K * V), 1);
    const auto top_values = std::get<0>(top);
    const auto top_indices = std::get<1>(top);
    auto next_index = torch::empty({rows * K}, torch::kLong);
    auto next_token = torch::empty({rows * K}, torch::kLong);
    auto next_scores = torch::full({rows, K}, kNegInf, torch::kDouble);
    const auto values = top_values.accessor<double, 2>();
    const auto indices = top_indices.accessor<int64_t, 2>();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t kept = 0;
      if (!done[r]) {
        for (int64_t j = 0; j < top_values.size(1) && kept < K; ++j) {
          const double s = values[r][j];
          if (!std::isfinite(s)) break;
          const int64_t beam = indices[r][j] / V;
          const int64_t token = indices[r][j] % V;
          if (token == special.eos) {
            // Only end tokens ranked among the best K candidates finish a hypothesis.
            if (j < K) {
              hyps[r].push_back({normalised(s, step), strip(tokens[r * K + beam], special.eos)});
            }
            continue;
          }
          next_index[r * K + kept] = r * K + beam;
          next_token[r * K + kept] = token;
          next_scores[r][kept] = s;
          ++kept;
        }
        if (static_cast<int64_t>(hyps[r].size()) >= K) done[r] = true;
      }
      // Done rows (and unfilled slots) keep beam 0 fed with end tokens, scored -inf.
      for (int64_t k = kept; k < K; ++k) {
        next_index[r * K + k] = r * K;
        next_token[r * K + k] = special.eos;
        next_scores[r][k] = kNegInf;
      }
    }
    tokens = torch::cat({tokens.index_select(0, next_index), next_token.unsqueeze(1)}, 1);
    beam_scores = next_scores;
    model.select(next_index);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }
  // Rows that reached max_len: their alive beams become hypotheses.
  const auto final_scores = beam_scores.accessor<double, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    if (done[r]) continue;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(final_scores[r][k])) continue;
      auto seq = strip(tokens[r * K + k], special.eos);
      hyps[r].push_back({normalised(final_scores[r][k], static_cast<int64_t>(seq.size())), seq});
    }
  }
  GenerateResult result;
  for (int64_t r = 0; r < rows; ++r) {
    auto& h = hyps[r];
    std::stable_sort(h.begin(), h.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(h.size()) > K) h.resize(static_cast<size_t>(K));
    result.tokens.push_back(h.empty() ? std::vector<int64_t>{} : h.front().tokens);
    result.scores.push_back(h.empty() ? kNegInf : h.front().score);
    std::vector<std::vector<int64_t>> nbest;
    for (const auto& x : h) nbest.push_back(x.tokens);
    result.nbest.push_back(std::move(nbest));
  }
  return result;
}

}  // namespace

GenerateResult generate(StepModel& model, int64_t rows, const GenerateConfig& cfg,
                        const SpecialTokens& special, uint64_t seed) {
  if (rows < 1) throw std::invalid_argument("generate: rows must be >= 1");
  if (cfg.beams < 1) throw std::invalid_argument("generate: beams must be >= 1");
  if (cfg.max_len < 1) throw std::invalid_argument("generate: max_len must be >= 1");
  torch::NoGradGuard no_grad;
  const bool sample = cfg.top_k > 0 || cfg.top_p < 1.0;
  if (cfg.beams > 1 && sample) {
    throw std::invalid_argument("generate: beam search and sampling (top_k/top_p) exclude each other");
  }
  if (cfg.beams > 1) return beam_search(model, rows, cfg, special);
  return greedy_or_sample(model, rows, cfg, special, seed);
}

}  // namespace coca::eval
