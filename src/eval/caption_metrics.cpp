#include "coca/eval/caption_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace coca::eval {
namespace {

constexpr int kMaxN = 4;
constexpr double kCiderSigma = 6.0;

using NGram = std::string;  // tokens joined by ' '
using Counts = std::map<NGram, int>;

/// Counts of every n-gram, n = 1..4, of a token list.
std::array<Counts, kMaxN> ngram_counts(const std::vector<std::string>& tokens) {
  std::array<Counts, kMaxN> counts;
  for (int n = 1; n <= kMaxN; ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string g = tokens[i];
      for (int k = 1; k < n; ++k) g += ' ' + tokens[i + k];
      ++counts[n - 1][g];
    }
  }
  return counts;
}

}  // namespace

std::vector<std::string> caption_tokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(current);
    current.clear();
  };
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      flush();
    } else if (std::isalnum(c) || c >= 0x80) {
      current += static_cast<char>(std::tolower(c));
    } else if (c == '\'' && !current.empty()) {
      // PTB splits "dog's" into "dog" "'s" and keeps both; punctuation-only tokens go.
      flush();
      current += '\'';
    } else {
      flush();
    }
  }
  flush();
  // A lone apostrophe is punctuation.
  tokens.erase(std::remove(tokens.begin(), tokens.end(), "'"), tokens.end());
  return tokens;
}

CaptionScores caption_scores(const std::vector<std::string>& candidates,
                             const std::vector<std::vector<std::string>>& references) {
  if (candidates.size() != references.size()) {
    throw std::invalid_argument("caption_scores: " + std::to_string(candidates.size()) +
                                " candidates but " + std::to_string(references.size()) +
                                " reference sets");
  }
  const size_t images = candidates.size();
  CaptionScores out;
  if (images == 0) return out;

  std::vector<std::vector<std::string>> cand_tokens(images);
  std::vector<std::vector<std::vector<std::string>>> ref_tokens(images);
  for (size_t i = 0; i < images; ++i) {
    if (references[i].empty()) {
      throw std::invalid_argument("caption_scores: image " + std::to_string(i) +
                                  " has no reference caption");
    }
    cand_tokens[i] = caption_tokens(candidates[i]);
    for (const auto& r : references[i]) ref_tokens[i].push_back(caption_tokens(r));
  }

  // BLEU (corpus level, as pycocoevalcap's BleuScorer with option "closest"):
  // p_n = (sum clipped matches + tiny) / (sum candidate n-grams + small),
  // BP = exp(1 - r / c) when c < r, r = sum over images of the reference length closest
  // to the candidate's (ties: the shorter).
  constexpr double kTiny = 1e-15, kSmall = 1e-9;
  std::array<double, kMaxN> matched{}, guessed{};
  double test_len = 0, ref_len = 0;
  for (size_t i = 0; i < images; ++i) {
    const auto cand = ngram_counts(cand_tokens[i]);
    std::array<Counts, kMaxN> max_ref;
    int best_len = -1;
    const int c_len = static_cast<int>(cand_tokens[i].size());
    for (const auto& r : ref_tokens[i]) {
      const auto rc = ngram_counts(r);
      for (int n = 0; n < kMaxN; ++n) {
        for (const auto& [g, k] : rc[n]) max_ref[n][g] = std::max(max_ref[n][g], k);
      }
      const int len = static_cast<int>(r.size());
      if (best_len < 0 || std::abs(len - c_len) < std::abs(best_len - c_len) ||
          (std::abs(len - c_len) == std::abs(best_len - c_len) && len < best_len)) {
        best_len = len;
      }
    }
    test_len += c_len;
    ref_len += best_len;
    for (int n = 0; n < kMaxN; ++n) {
      guessed[n] += std::max(0, c_len - n);
      for (const auto& [g, k] : cand[n]) {
        const auto it = max_ref[n].find(g);
        if (it != max_ref[n].end()) matched[n] += std::min(k, it->second);
      }
    }
  }
  const double ratio = (test_len + kTiny) / (ref_len + kSmall);
  const double bp = ratio < 1.0 ? std::exp(1.0 - 1.0 / ratio) : 1.0;
  double product = 1.0;
  for (int n = 0; n < kMaxN; ++n) {
    product *= (matched[n] + kTiny) / (guessed[n] + kSmall);
    out.bleu[n] = std::pow(product, 1.0 / (n + 1)) * bp;
  }

  // CIDEr-D: document frequency of each n-gram = number of images whose references
  // contain it; vector entries tf * (log(images) - log(max(1, df))), tf = raw count.
  std::map<NGram, double> df;
  for (size_t i = 0; i < images; ++i) {
    std::set<NGram> seen;
    for (const auto& r : ref_tokens[i]) {
      const auto rc = ngram_counts(r);
      for (int n = 0; n < kMaxN; ++n) {
        for (const auto& kv : rc[n]) seen.insert(kv.first);
      }
    }
    for (const auto& g : seen) df[g] += 1;
  }
  const double log_images = std::log(static_cast<double>(images));
  struct Vec {
    std::array<std::map<NGram, double>, kMaxN> v;
    std::array<double, kMaxN> norm{};
    int length = 0;
  };
  auto to_vec = [&](const std::vector<std::string>& tokens) {
    Vec out;
    const auto counts = ngram_counts(tokens);
    for (int n = 0; n < kMaxN; ++n) {
      for (const auto& [g, tf] : counts[n]) {
        const auto it = df.find(g);
        const double d = std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
        const double w = tf * (log_images - d);
        out.v[n][g] = w;
        out.norm[n] += w * w;
      }
      out.norm[n] = std::sqrt(out.norm[n]);
    }
    // The reference implementation's "length" counts bigrams (its n-gram index 1), i.e.
    // tokens - 1 for captions of two or more tokens; kept for identical scores.
    out.length = static_cast<int>(tokens.size() >= 2 ? tokens.size() - 1 : 0);
    return out;
  };
  double total = 0;
  out.cider_per_image.resize(images);
  for (size_t i = 0; i < images; ++i) {
    const Vec hyp = to_vec(cand_tokens[i]);
    double score = 0;
    for (const auto& r : ref_tokens[i]) {
      const Vec ref = to_vec(r);
      const double delta = hyp.length - ref.length;
      for (int n = 0; n < kMaxN; ++n) {
        double val = 0;
        for (const auto& [g, w] : hyp.v[n]) {
          const auto it = ref.v[n].find(g);
          if (it != ref.v[n].end()) val += std::min(w, it->second) * it->second;
        }
        if (hyp.norm[n] != 0 && ref.norm[n] != 0) val /= hyp.norm[n] * ref.norm[n];
        val *= std::exp(-(delta * delta) / (2 * kCiderSigma * kCiderSigma));
        score += val;
      }
    }
    const double s = score / kMaxN / ref_tokens[i].size() * 10.0;
    out.cider_per_image[i] = s;
    total += s;
  }
  out.cider = total / images;
  return out;
}

}  // namespace coca::eval
