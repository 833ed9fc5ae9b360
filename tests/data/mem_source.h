// Test-only in-memory source and loader hooks: shards of numbered samples, with planted
// bad samples, and trivial "decoder" / "tokenizer" hooks standing in for the real ones.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coca/common/error.h"
#include "coca/data/loader.h"
#include "coca/data/sources.h"

namespace coca::data::test_data {

/// Samples are keyed "<name>:<shard>:<i>". Keys in `corrupt` carry the bytes "corrupt"
/// (the test transform throws), keys in `empty` have an empty caption, keys in `missing`
/// are reported by the reader as missing files, and shards in `truncated` end early,
/// after `truncated_at` samples, with a truncated_shard report.
class MemSource : public Source {
 public:
  MemSource(std::string name, std::vector<int64_t> shard_sizes, double fraction = 1.0)
      : sizes_(std::move(shard_sizes)) {
    cfg_.name = std::move(name);
    cfg_.type = "synthetic";
    cfg_.fraction = fraction;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      shards_.push_back(ShardInfo{cfg_.name + "/" + std::to_string(i), static_cast<int64_t>(i),
                                  sizes_[i]});
    }
  }
  static std::string key(const std::string& name, int64_t shard, int64_t i) {
    return name + ":" + std::to_string(shard) + ":" + std::to_string(i);
  }
  std::string key(int64_t shard, int64_t i) const { return key(cfg_.name, shard, i); }
  std::vector<std::string> all_keys() const {
    std::vector<std::string> k;
    for (size_t s = 0; s < sizes_.size(); ++s) {
      for (int64_t i = 0; i < sizes_[s]; ++i) k.push_back(key(static_cast<int64_t>(s), i));
    }
    return k;
  }

  std::set<std::string> corrupt, empty, missing;
  std::set<int64_t> truncated;
  int64_t truncated_at = 0;

  const SourceConfig& config() const override { return cfg_; }
  const std::vector<ShardInfo>& shards() const override { return shards_; }
  std::unique_ptr<ShardReader> open(int64_t index, const SkipFn& on_skip) const override {
    return std::make_unique<Reader>(*this, index, on_skip);
  }

 private:
  class Reader : public ShardReader {
   public:
    Reader(const MemSource& src, int64_t shard, SkipFn on_skip)
        : src_(src), shard_(shard), on_skip_(std::move(on_skip)) {}
    bool next(RawSample& out) override {
      const auto& shard_name = src_.shards_[static_cast<size_t>(shard_)].name;
      while (i_ < src_.sizes_[static_cast<size_t>(shard_)]) {
        if (src_.truncated.count(shard_) && i_ == src_.truncated_at) {
          if (on_skip_) on_skip_(SkipReason::truncated_shard, shard_name, "", "unexpected end");
          i_ = src_.sizes_[static_cast<size_t>(shard_)];
          return false;
        }
        const std::string k = src_.key(shard_, i_++);
        if (src_.missing.count(k)) {
          if (on_skip_) on_skip_(SkipReason::missing_file, shard_name, k, "no such file");
          continue;
        }
        out = RawSample{};
        out.key = k;
        const std::string bytes = src_.corrupt.count(k) ? "corrupt" : k;
        out.image_bytes.assign(bytes.begin(), bytes.end());
        if (!src_.empty.count(k)) out.captions = {"caption of " + k};
        out.labels = {src_.cfg_.name};
        out.label_ids = {shard_};
        return true;
      }
      return false;
    }

   private:
    const MemSource& src_;
    int64_t shard_;
    int64_t i_ = 0;
    SkipFn on_skip_;
  };

  SourceConfig cfg_;
  std::vector<int64_t> sizes_;
  std::vector<ShardInfo> shards_;
};

/// Hooks that stand in for the real decoder/tokenizer: the "image" is [3, 2, 2] with
/// channel 0 = a hash of the key, channel 1 = the sample seed's low bits (so a seed that
/// depended on threads would show), channel 2 = 1. Tokens: the first 6 bytes of the text.
inline LoaderHooks test_hooks() {
  LoaderHooks h;
  h.image_transform = [](const RawSample& s, uint64_t seed) {
    const std::string bytes(s.image_bytes.begin(), s.image_bytes.end());
    if (bytes == "corrupt") throw DataError("", s.key, "cannot decode image");
    auto img = torch::ones({3, 2, 2});
    img[0].fill_(static_cast<double>(std::hash<std::string>{}(bytes) % 100000));
    img[1].fill_(static_cast<double>(seed % 65536));
    return img;
  };
  h.make_text = [](const RawSample& s, const SourceConfig&, uint64_t, int64_t) {
    return s.captions.empty() ? std::string() : s.captions[0];
  };
  h.tokenize = [](const std::vector<std::string>& texts) {
    auto t = torch::zeros({static_cast<int64_t>(texts.size()), 6}, torch::kLong);
    for (size_t i = 0; i < texts.size(); ++i) {
      for (size_t j = 0; j < 6 && j < texts[i].size(); ++j) {
        t[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = static_cast<int64_t>(texts[i][j]);
      }
    }
    return t;
  };
  return h;
}

}  // namespace coca::data::test_data
