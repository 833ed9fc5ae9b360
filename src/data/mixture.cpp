// Mixture quotas, per-source streams and the data cursor.
#include "coca/data/mixture.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include "coca/common/error.h"
#include "data/detail/shuffle.h"

namespace coca::data {

std::vector<int64_t> mixture_quotas(const std::vector<double>& fractions, int64_t batch_size) {
  if (fractions.empty()) throw std::invalid_argument("mixture_quotas: no sources");
  if (batch_size < 1) {
    throw std::invalid_argument(fmt::format("mixture_quotas: batch_size must be >= 1, got {}",
                                            batch_size));
  }
  double total = 0;
  for (size_t i = 0; i < fractions.size(); ++i) {
    if (!(fractions[i] > 0) || !std::isfinite(fractions[i])) {
      throw std::invalid_argument(
          fmt::format("mixture_quotas: fraction {} of source {} must be > 0", fractions[i], i));
    }
    total += fractions[i];
  }
  std::vector<int64_t> quotas(fractions.size());
  std::vector<double> remainders(fractions.size());
  int64_t assigned = 0;
  for (size_t i = 0; i < fractions.size(); ++i) {
    const double ideal = fractions[i] / total * static_cast<double>(batch_size);
    // A tiny tolerance keeps 0.3/0.7-style fractions from flooring 19.999999 to 19.
    quotas[i] = static_cast<int64_t>(std::floor(ideal + 1e-9));
    remainders[i] = ideal - static_cast<double>(quotas[i]);
    assigned += quotas[i];
  }
  std::vector<size_t> order(fractions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Largest remainder first; remainders within 1e-9 are a tie, broken by source order.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return remainders[a] > remainders[b] + 1e-9;
  });
  for (size_t k = 0; assigned < batch_size; ++k, ++assigned) ++quotas[order[k % order.size()]];
  return quotas;
}

// ---------------------------------------------------------------------------------------
// DataCursor

namespace {

constexpr const char* kCursorFields[] = {"epoch",       "shard",    "offset",  "position",
                                         "drawn",       "drawn_epoch", "readable", "samples"};

int64_t* cursor_field(SourceCursor& c, size_t i) {
  int64_t* fields[] = {&c.epoch, &c.shard, &c.offset, &c.position,
                       &c.drawn, &c.drawn_epoch, &c.readable, &c.samples};
  return fields[i];
}

int64_t parse_int(const std::string& text, const std::string& word) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < 0) {
    throw std::invalid_argument(
        fmt::format("DataCursor::parse: '{}' is not a non-negative integer in '{}'", text, word));
  }
  return v;
}

}  // namespace

std::string DataCursor::to_string() const {
  std::string s = fmt::format("v1 rank={} world={} batches={} sources={}", rank, world_size,
                              batches, sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    SourceCursor c = sources[i];
    s += fmt::format(" s{}=", i);
    for (size_t f = 0; f < std::size(kCursorFields); ++f) {
      s += fmt::format("{}{}:{}", f ? "," : "", kCursorFields[f], *cursor_field(c, f));
    }
  }
  return s;
}

DataCursor DataCursor::parse(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  if (!(in >> word) || word != "v1") {
    throw std::invalid_argument(
        fmt::format("DataCursor::parse: expected a cursor starting with 'v1', got '{}'", text));
  }
  DataCursor c;
  int64_t n_sources = -1;
  std::map<size_t, SourceCursor> by_index;
  while (in >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) {
      throw std::invalid_argument(fmt::format("DataCursor::parse: expected key=value, got '{}'", word));
    }
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    if (key == "rank") {
      c.rank = static_cast<int>(parse_int(value, word));
    } else if (key == "world") {
      c.world_size = static_cast<int>(parse_int(value, word));
    } else if (key == "batches") {
      c.batches = parse_int(value, word);
    } else if (key == "sources") {
      n_sources = parse_int(value, word);
    } else if (key.size() > 1 && key[0] == 's') {
      const auto index = static_cast<size_t>(parse_int(key.substr(1), word));
      SourceCursor sc;
      std::vector<bool> seen(std::size(kCursorFields), false);
      std::istringstream fields(value);
      for (std::string kv; std::getline(fields, kv, ',');) {
        const size_t colon = kv.find(':');
        size_t f = 0;
        while (f < std::size(kCursorFields) &&
               (colon == std::string::npos || kv.substr(0, colon) != kCursorFields[f])) {
          ++f;
        }
        if (f == std::size(kCursorFields)) {
          throw std::invalid_argument(
              fmt::format("DataCursor::parse: unknown field '{}' in '{}'", kv, word));
        }
        *cursor_field(sc, f) = parse_int(kv.substr(colon + 1), word);
        seen[f] = true;
      }
      for (size_t f = 0; f < seen.size(); ++f) {
        if (!seen[f]) {
          throw std::invalid_argument(
              fmt::format("DataCursor::parse: field '{}' missing in '{}'", kCursorFields[f], word));
        }
      }
      by_index[index] = sc;
    } else {
      throw std::invalid_argument(fmt::format("DataCursor::parse: unknown key in '{}'", word));
    }
  }
  if (n_sources < 0) throw std::invalid_argument("DataCursor::parse: 'sources=' is missing");
  for (size_t i = 0; i < static_cast<size_t>(n_sources); ++i) {
    auto it = by_index.find(i);
    if (it == by_index.end()) {
      throw std::invalid_argument(fmt::format("DataCursor::parse: source s{} is missing", i));
    }
    c.sources.push_back(it->second);
  }
  if (by_index.size() != c.sources.size()) {
    throw std::invalid_argument(
        fmt::format("DataCursor::parse: {} source entries but sources={}", by_index.size(), n_sources));
  }
  if (c.world_size < 1 || c.rank >= c.world_size) {
    throw std::invalid_argument(fmt::format("DataCursor::parse: rank {} not in a world of {}",
                                            c.rank, c.world_size));
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// SourceStream

SourceStream::SourceStream(std::shared_ptr<const Source> source, int64_t source_index,
                           uint64_t seed, int rank, int world_size, const SourceCursor& start)
    : source_(std::move(source)), source_index_(source_index), seed_(seed), rank_(rank),
      world_size_(world_size), cursor_(start) {
  if (!source_) throw std::invalid_argument("SourceStream: null source");
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw std::invalid_argument(
        fmt::format("SourceStream: rank {} not in a world of {}", rank, world_size));
  }
  const auto n = static_cast<int64_t>(source_->shards().size());
  if (n == 0) {
    throw DataError(source_->config().path, "",
                    fmt::format("source '{}' has no shards", source_->config().name));
  }
  split_samples_ = n < world_size;
  order_ = shard_order(cursor_.epoch);
  cursor_.readable = 0;
  cursor_.samples = 0;
}

std::vector<int64_t> SourceStream::shard_order(int64_t epoch) const {
  const auto n = static_cast<int64_t>(source_->shards().size());
  const std::vector<int64_t> all = detail::shuffled_indices(
      n, detail::hash_values({seed_, static_cast<uint64_t>(source_index_),
                              static_cast<uint64_t>(epoch), 0x5AA2DULL}));
  if (split_samples_) return all;
  std::vector<int64_t> mine;
  for (int64_t j = rank_; j < n; j += world_size_) mine.push_back(all[static_cast<size_t>(j)]);
  return mine;
}

void SourceStream::next(RawSample& out, const SkipFn& on_skip) {
  // The reader reports through this stream, so replayed samples can be kept quiet and
  // the callback of the current call is the one used.
  current_skip_ = (!split_samples_ || rank_ == 0) ? &on_skip : nullptr;
  for (;;) {
    if (!reader_) {
      if (cursor_.shard >= static_cast<int64_t>(order_.size())) {
        if (cursor_.drawn_epoch == 0) {
          const auto& cfg = source_->config();
          throw DataError(cfg.path, "",
                          fmt::format("source '{}' ({}) gave rank {} of {} no sample in epoch "
                                      "{}: its {} shard(s) yielded {} readable sample(s) in all; "
                                      "every sample was skipped, or there are fewer than ranks",
                                      cfg.name.empty() ? cfg.type : cfg.name, cfg.type, rank_,
                                      world_size_, cursor_.epoch, source_->shards().size(),
                                      cursor_.position));
        }
        ++cursor_.epoch;
        cursor_.shard = 0;
        cursor_.offset = 0;
        cursor_.position = 0;
        cursor_.drawn_epoch = 0;
        order_ = shard_order(cursor_.epoch);
        continue;
      }
      reader_ = source_->open(order_[static_cast<size_t>(cursor_.shard)],
                              [this](SkipReason r, const std::string& shard,
                                     const std::string& key, const std::string& detail) {
                                if (current_skip_ && *current_skip_ && !replaying_) {
                                  (*current_skip_)(r, shard, key, detail);
                                }
                              });
      // Resuming inside a shard: replay the samples already taken, without reporting again.
      replaying_ = true;
      RawSample scratch;
      for (int64_t i = 0; i < cursor_.offset; ++i) {
        if (!reader_->next(scratch)) break;
      }
      replaying_ = false;
    }
    if (!reader_->next(out)) {
      reader_.reset();
      ++cursor_.shard;
      cursor_.offset = 0;
      continue;
    }
    last_shard_ = order_[static_cast<size_t>(cursor_.shard)];
    last_offset_ = cursor_.offset;
    ++cursor_.offset;
    const int64_t pos = cursor_.position++;
    if (split_samples_ && pos % world_size_ != rank_) continue;
    ++cursor_.drawn;
    ++cursor_.drawn_epoch;
    current_skip_ = nullptr;
    return;
  }
}

}  // namespace coca::data
