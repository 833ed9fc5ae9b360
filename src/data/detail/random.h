// Small deterministic random helpers shared by the data code: the same numbers on every
// platform and thread count (std::uniform_*_distribution is implementation-defined).
#pragma once

#include <cstdint>
#include <random>

#include "data/detail/shuffle.h"  // mix64, hash_values

namespace coca::data::detail {

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
