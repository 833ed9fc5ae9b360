// Portable deterministic shuffling for the data pipeline. std::shuffle and the standard
// distributions differ between standard libraries, so the order of samples would depend
// on the compiler; these helpers are defined bit for bit.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <vector>

namespace coca::data::detail {

/// SplitMix64 finaliser (Steele et al., 2014): a bijective 64-bit mix.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Hash of several values (order matters).
inline uint64_t hash_values(std::initializer_list<uint64_t> values) {
  uint64_t h = 0x6A09E667F3BCC908ULL;
  for (uint64_t v : values) h = mix64(h ^ mix64(v));
  return h;
}

/// 0..n-1 in a Fisher-Yates order drawn from a SplitMix64 stream seeded with `seed`.
inline std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    state = mix64(state);
    // Multiply-shift maps the 64-bit draw to [0, i]; its bias is below 2^-32 for any n here.
    const auto bound = static_cast<unsigned __int128>(i + 1);
    const auto j = static_cast<int64_t>((static_cast<unsigned __int128>(state) * bound) >> 64);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace coca::data::detail
