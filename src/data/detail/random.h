// Small deterministic random helpers shared by the data code: the same numbers on every
// platform and thread count (std::uniform_*_distribution is implementation-defined).
#pragma once

#include <cstdint>
#include <random>

namespace coca::data::detail {

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Uniform double in [lo, hi) from 53 random bits.
inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

/// Uniform integer in [0, n) for n > 0 (modulo bias below 2^-40 for the n used here).
inline int64_t uniform_int(std::mt19937_64& rng, int64_t n) {
  return static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
}

}  // namespace coca::data::detail
