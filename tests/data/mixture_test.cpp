// Mixture quotas (hand-worked largest-remainder values), per-source streams (epochs,
// reshuffles, rank splits) and the cursor text format.
#include "coca/data/mixture.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/mem_source.h"

namespace coca::data {
namespace {

using test_data::MemSource;

TEST(MixtureQuotasTest, LargestRemainderByHand) {
  EXPECT_EQ(mixture_quotas({0.5, 0.5}, 64), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(mixture_quotas({1, 1, 1}, 64), (std::vector<int64_t>{22, 21, 21}));
  EXPECT_EQ(mixture_quotas({1.0 / 3, 1.0 / 3, 1.0 / 3}, 64), (std::vector<int64_t>{22, 21, 21}));
  // 0.3 * 10 is 2.9999999999999996 in floating point.
  EXPECT_EQ(mixture_quotas({0.3, 0.7}, 10), (std::vector<int64_t>{3, 7}));
  // 1.333 / 2.667 -> floors 1, 2; the larger remainder (.667) takes the last sample.
  EXPECT_EQ(mixture_quotas({1, 2}, 4), (std::vector<int64_t>{1, 3}));
  // 4.9 / 1.4 / 0.7 -> floors 4, 1, 0; remainders .9, .4, .7 -> sources 0 and 2.
  EXPECT_EQ(mixture_quotas({0.7, 0.2, 0.1}, 7), (std::vector<int64_t>{5, 1, 1}));
  EXPECT_EQ(mixture_quotas({0.01, 0.99}, 8), (std::vector<int64_t>{0, 8}));
  EXPECT_THROW(mixture_quotas({}, 8), std::invalid_argument);
  EXPECT_THROW(mixture_quotas({0.0, 1.0}, 8), std::invalid_argument);
  EXPECT_THROW(mixture_quotas({1.0}, 0), std::invalid_argument);
}

std::vector<std::string> draw(SourceStream& stream, int64_t n) {
  std::vector<std::string> keys;
  RawSample s;
  for (int64_t i = 0; i < n; ++i) {
    stream.next(s, {});
    keys.push_back(s.key);
  }
  return keys;
}

TEST(SourceStreamTest, EpochVisitsEverySampleOnceThenReshuffles) {
  auto src = std::make_shared<MemSource>("a", std::vector<int64_t>(10, 3));
  SourceStream stream(src, 0, /*seed=*/7, 0, 1);
  const auto epoch0 = draw(stream, 30);
  EXPECT_EQ(stream.cursor().epoch, 0);
  const auto epoch1 = draw(stream, 30);
  EXPECT_EQ(stream.cursor().epoch, 1);
  const std::vector<std::string> all = src->all_keys();
  EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()),
            std::set<std::string>(all.begin(), all.end()));
  EXPECT_EQ(std::set<std::string>(epoch1.begin(), epoch1.end()),
            std::set<std::string>(all.begin(), all.end()));
  EXPECT_NE(epoch0, epoch1);
  EXPECT_NE(stream.shard_order(0), stream.shard_order(1));
  // A shard is read front to back.
  for (size_t i = 0; i < epoch0.size(); i += 3) {
    EXPECT_EQ(epoch0[i].substr(epoch0[i].size() - 2), ":0");
    EXPECT_EQ(epoch0[i + 2].substr(epoch0[i + 2].size() - 2), ":2");
  }
  // Same seed -> same sequence; another seed -> another order.
  SourceStream again(src, 0, 7, 0, 1);
  EXPECT_EQ(draw(again, 30), epoch0);
  SourceStream other(src, 0, 8, 0, 1);
  EXPECT_NE(draw(other, 30), epoch0);
}

/// Keys each rank draws in epoch 0.
std::vector<std::vector<std::string>> per_rank_epoch0(std::shared_ptr<MemSource> src, int world) {
  std::vector<std::vector<std::string>> out;
  for (int r = 0; r < world; ++r) {
    SourceStream stream(src, 0, 3, r, world);
    std::vector<std::string> keys;
    RawSample s;
    for (;;) {
      stream.next(s, {});
      if (stream.cursor().epoch > 0) break;
      keys.push_back(s.key);
    }
    out.push_back(keys);
  }
  return out;
}

void expect_disjoint_cover(const std::vector<std::vector<std::string>>& per_rank,
                           const std::vector<std::string>& all) {
  std::multiset<std::string> seen;
  for (const auto& keys : per_rank) {
    EXPECT_FALSE(keys.empty());
    seen.insert(keys.begin(), keys.end());
  }
  EXPECT_EQ(seen.size(), all.size());  // disjoint: no key twice
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()),
            std::set<std::string>(all.begin(), all.end()));
}

TEST(SourceStreamTest, RanksSplitShardsDisjointlyAndCoverTheSource) {
  auto src = std::make_shared<MemSource>("a", std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2, 6, 5, 3});
  SourceStream probe(src, 0, 3, 0, 3);
  EXPECT_FALSE(probe.splits_samples());
  expect_disjoint_cover(per_rank_epoch0(src, 3), src->all_keys());
}

TEST(SourceStreamTest, FewerShardsThanRanksSplitsBySamplePosition) {
  auto src = std::make_shared<MemSource>("a", std::vector<int64_t>{7, 4});
  SourceStream probe(src, 0, 3, 0, 3);
  EXPECT_TRUE(probe.splits_samples());
  const auto per_rank = per_rank_epoch0(src, 3);
  expect_disjoint_cover(per_rank, src->all_keys());
  // 11 samples over 3 ranks by position modulo 3: 4, 4, 3.
  EXPECT_EQ(per_rank[0].size(), 4u);
  EXPECT_EQ(per_rank[1].size(), 4u);
  EXPECT_EQ(per_rank[2].size(), 3u);
}

TEST(SourceStreamTest, ResumesFromItsCursorMidShard) {
  auto src = std::make_shared<MemSource>("a", std::vector<int64_t>{5, 5, 5});
  src->missing = {src->key(1, 1)};
  SourceStream full(src, 0, 11, 0, 1);
  const auto first = draw(full, 7);
  const SourceCursor at = full.cursor();
  const auto rest = draw(full, 20);
  SourceStream resumed(src, 0, 11, 0, 1, at);
  EXPECT_EQ(draw(resumed, 20), rest);
}

TEST(SourceStreamTest, EpochWithNothingReadableIsAnError) {
  auto src = std::make_shared<MemSource>("ghosts", std::vector<int64_t>{2, 2});
  src->missing = {src->key(0, 0), src->key(0, 1), src->key(1, 0), src->key(1, 1)};
  SourceStream stream(src, 0, 0, 0, 1);
  RawSample s;
  try {
    stream.next(s, {});
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'ghosts'"), std::string::npos) << e.what();
  }
}

TEST(DataCursorTest, TextRoundTripAndErrors) {
  DataCursor c;
  c.rank = 1;
  c.world_size = 4;
  c.batches = 17;
  c.sources.resize(2);
  c.sources[0] = SourceCursor{3, 2, 5, 40, 1000, 37, 30, 990};
  c.sources[1] = SourceCursor{0, 1, 0, 9, 9, 9, 9, 8};
  const std::string text = c.to_string();
  const DataCursor back = DataCursor::parse(text);
  EXPECT_EQ(back.to_string(), text);
  EXPECT_EQ(back.rank, 1);
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(back.batches, 17);
  ASSERT_EQ(back.sources.size(), 2u);
  EXPECT_EQ(back.sources[0].offset, 5);
  EXPECT_EQ(back.sources[0].drawn, 1000);
  EXPECT_EQ(back.sources[1].samples, 8);
  EXPECT_EQ(DataCursor::parse(DataCursor{}.to_string()).sources.size(), 0u);
  EXPECT_THROW(DataCursor::parse(""), std::invalid_argument);
  EXPECT_THROW(DataCursor::parse("v1 rank=0 world=1 batches=x sources=0"), std::invalid_argument);
  EXPECT_THROW(DataCursor::parse("v1 rank=0 world=1 batches=1 sources=1"), std::invalid_argument);
  EXPECT_THROW(DataCursor::parse("v1 rank=2 world=2 batches=1 sources=0"), std::invalid_argument);
}

}  // namespace
}  // namespace coca::data
