// Loader: exact quotas in every batch, independence from the thread count, exact resume
// from a cursor, skipped samples counted, clear errors, clean early shutdown.
#include "coca/data/loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "coca/data/data_config.h"
#include "data/detail/source_factories.h"
#include "test_utils.h"

#include "data/mem_source.h"

namespace coca::data {
namespace {

using test_data::MemSource;
using test_data::test_hooks;

LoaderOptions options(int64_t batch, int64_t workers, int rank = 0, int world = 1) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.prefetch = 2;
  o.rank = rank;
  o.world_size = world;
  o.seed = 1234;
  o.report_bad_every = 3;
  return o;
}

std::vector<std::shared_ptr<const Source>> as_sources(
    std::initializer_list<std::shared_ptr<MemSource>> list) {
  return {list.begin(), list.end()};
}

void expect_same_batch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.source_index, b.source_index);
  EXPECT_EQ(a.texts, b.texts);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.label_ids, b.label_ids);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.text, b.text));
}

TEST(LoaderTest, EveryBatchHoldsTheExactQuotas) {
  // Sources of unequal sizes, so they wrap around their epochs at different batches.
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{5, 3, 4}, 0.5);
  auto b = std::make_shared<MemSource>("b", std::vector<int64_t>{2, 2, 2, 2, 2, 2, 2}, 0.5);
  {
    Loader loader(as_sources({a, b}), options(8, 2), test_hooks());
    EXPECT_EQ(loader.quotas(), (std::vector<int64_t>{4, 4}));
    for (int i = 0; i < 20; ++i) {
      const Batch batch = loader.next();
      ASSERT_EQ(batch.size(), 8);
      EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{8, 3, 2, 2}));
      EXPECT_EQ(batch.text.sizes(), (std::vector<int64_t>{8, 6}));
      EXPECT_EQ(batch.text.scalar_type(), torch::kLong);
      EXPECT_EQ(std::count(batch.source_index.begin(), batch.source_index.end(), 0), 4);
      EXPECT_EQ(std::count(batch.source_index.begin(), batch.source_index.end(), 1), 4);
      for (int64_t j = 0; j < 8; ++j) {
        // Each sample's key names the source it is attributed to.
        EXPECT_EQ(batch.keys[static_cast<size_t>(j)][0], batch.source_index[static_cast<size_t>(j)] ? 'b' : 'a');
      }
    }
    // 80 samples of a (12 per epoch) and of b (14 per epoch).
    const auto stats = loader.stats();
    EXPECT_EQ(stats[0].samples, 80);
    EXPECT_EQ(stats[0].epoch, 6);  // sample 80 is in epoch 80 / 12 -> 6
    EXPECT_EQ(stats[1].epoch, 5);  // 80 / 14 -> 5
  }
  auto c = std::make_shared<MemSource>("c", std::vector<int64_t>{11, 13}, 1.0);
  auto d = std::make_shared<MemSource>("d", std::vector<int64_t>{30}, 1.0);
  auto e = std::make_shared<MemSource>("e", std::vector<int64_t>{3, 3, 3, 3}, 1.0);
  Loader three(as_sources({c, d, e}), options(64, 3), test_hooks());
  EXPECT_EQ(three.quotas(), (std::vector<int64_t>{22, 21, 21}));
  for (int i = 0; i < 6; ++i) {
    const Batch batch = three.next();
    for (int64_t s = 0; s < 3; ++s) {
      EXPECT_EQ(std::count(batch.source_index.begin(), batch.source_index.end(), s),
                three.quotas()[static_cast<size_t>(s)]);
    }
  }
}

TEST(LoaderTest, EachEpochCoversTheSourceOnce) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{4, 4, 4, 4, 4});
  Loader loader(as_sources({a}), options(5, 2), test_hooks());
  std::vector<std::string> epoch0, epoch1;
  for (int i = 0; i < 4; ++i) {
    const Batch b = loader.next();
    epoch0.insert(epoch0.end(), b.keys.begin(), b.keys.end());
  }
  for (int i = 0; i < 4; ++i) {
    const Batch b = loader.next();
    epoch1.insert(epoch1.end(), b.keys.begin(), b.keys.end());
  }
  const auto all = a->all_keys();
  EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()), std::set<std::string>(all.begin(), all.end()));
  EXPECT_EQ(std::set<std::string>(epoch1.begin(), epoch1.end()), std::set<std::string>(all.begin(), all.end()));
  EXPECT_NE(epoch0, epoch1);  // reshuffled shard order
}

std::vector<std::shared_ptr<MemSource>> planted_sources() {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{6, 5, 7, 4}, 2.0);
  a->corrupt = {a->key(0, 1), a->key(2, 3)};
  a->empty = {a->key(1, 0)};
  a->missing = {a->key(2, 6)};
  auto b = std::make_shared<MemSource>("b", std::vector<int64_t>{3, 8}, 1.0);
  b->corrupt = {b->key(1, 2)};
  return {a, b};
}

TEST(LoaderTest, SameBatchesWithOneOrThreeWorkers) {
  const auto src = planted_sources();
  // Sample-dependent delays make the three workers finish out of order.
  LoaderHooks jittery = test_hooks();
  jittery.image_transform = [inner = jittery.image_transform](const RawSample& s, uint64_t seed) {
    std::this_thread::sleep_for(std::chrono::microseconds(std::hash<std::string>{}(s.key) % 700));
    return inner(s, seed);
  };
  Loader one(as_sources({src[0], src[1]}), options(6, 1), test_hooks());
  Loader three(as_sources({src[0], src[1]}), options(6, 3), jittery);
  for (int i = 0; i < 15; ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    expect_same_batch(one.next(), three.next());
  }
  EXPECT_EQ(one.cursor().to_string(), three.cursor().to_string());
}

TEST(LoaderTest, ResumedCursorReplaysTheSameBatches) {
  const auto src = planted_sources();
  for (int world : {1, 2}) {
    for (int stop_after : {1, 5}) {
      SCOPED_TRACE("world " + std::to_string(world) + ", cursor after " + std::to_string(stop_after));
      const int rank = world - 1;
      Loader full(as_sources({src[0], src[1]}), options(6, 2, rank, world), test_hooks());
      std::vector<Batch> batches;
      std::string saved;
      for (int i = 0; i < 12; ++i) {
        batches.push_back(full.next());
        if (i + 1 == stop_after) saved = full.cursor().to_string();
      }
      Loader resumed(as_sources({src[0], src[1]}), options(6, 3, rank, world), test_hooks(),
                     DataCursor::parse(saved));
      for (int i = stop_after; i < 12; ++i) {
        SCOPED_TRACE("batch " + std::to_string(i));
        expect_same_batch(resumed.next(), batches[static_cast<size_t>(i)]);
      }
      EXPECT_EQ(resumed.cursor().to_string(), full.cursor().to_string());
    }
  }
}

TEST(LoaderTest, CursorFromAnotherWorldIsRejected) {
  const auto src = planted_sources();
  Loader loader(as_sources({src[0], src[1]}), options(6, 1, 0, 2), test_hooks());
  loader.next();
  EXPECT_THROW(Loader(as_sources({src[0], src[1]}), options(6, 1, 0, 1), test_hooks(), loader.cursor()),
               std::invalid_argument);
  EXPECT_THROW(Loader(as_sources({src[0]}), options(6, 1, 0, 2), test_hooks(), loader.cursor()),
               std::invalid_argument);
}

TEST(LoaderTest, PlantedBadSamplesAreSkippedAndCounted) {
  // One shard per source, so the order inside an epoch is the shard's order.
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{20}, 0.5);
  a->corrupt = {a->key(0, 2), a->key(0, 5)};
  a->empty = {a->key(0, 7)};
  a->missing = {a->key(0, 9)};
  auto b = std::make_shared<MemSource>("b", std::vector<int64_t>{5}, 0.5);
  b->truncated = {0};
  b->truncated_at = 3;
  Loader loader(as_sources({a, b}), options(16, 2), test_hooks());
  std::set<std::string> keys_a;
  for (int i = 0; i < 2; ++i) {
    const Batch batch = loader.next();
    for (size_t j = 0; j < 8; ++j) keys_a.insert(batch.keys[j]);
    for (const auto& k : batch.keys) {
      EXPECT_FALSE(a->corrupt.count(k) || a->empty.count(k) || a->missing.count(k)) << k;
      EXPECT_TRUE(k[0] == 'a' || std::stoi(k.substr(k.rfind(':') + 1)) < 3) << k;
    }
  }
  // a: 16 good samples per epoch = exactly the first two batches' quota of 8.
  EXPECT_EQ(keys_a.size(), 16u);
  const auto stats = loader.stats();
  using R = SkipReason;
  EXPECT_EQ(stats[0].skipped[static_cast<size_t>(R::corrupt_image)], 2);
  EXPECT_EQ(stats[0].skipped[static_cast<size_t>(R::empty_text)], 1);
  EXPECT_EQ(stats[0].skipped[static_cast<size_t>(R::missing_file)], 1);
  EXPECT_EQ(stats[0].skipped[static_cast<size_t>(R::truncated_shard)], 0);
  // b: 3 samples per epoch before the truncation; 16 samples = 5 full epochs + 1, and each
  // truncation is accounted with the sample that follows it.
  EXPECT_EQ(stats[1].skipped[static_cast<size_t>(R::truncated_shard)], 5);
  EXPECT_EQ(stats[1].epoch, 5);
  // The run goes on.
  EXPECT_EQ(loader.next().size(), 16);
}

TEST(LoaderTest, SourceWithNothingDecodableIsAClearError) {
  auto good = std::make_shared<MemSource>("good", std::vector<int64_t>{10});
  auto bad = std::make_shared<MemSource>("broken", std::vector<int64_t>{3, 3});
  bad->corrupt = {bad->key(0, 0), bad->key(0, 1), bad->key(0, 2),
                  bad->key(1, 0), bad->key(1, 1), bad->key(1, 2)};
  Loader loader(as_sources({good, bad}), options(4, 2), test_hooks());
  try {
    loader.next();
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'broken'"), std::string::npos) << what;
    EXPECT_NE(what.find("corrupt_image=6"), std::string::npos) << what;
  }
  EXPECT_THROW(loader.next(), DataError);

  // Nothing readable at all at the reader level.
  auto ghosts = std::make_shared<MemSource>("ghosts", std::vector<int64_t>{2});
  ghosts->missing = {ghosts->key(0, 0), ghosts->key(0, 1)};
  Loader second(as_sources({good, ghosts}), options(4, 2), test_hooks());
  try {
    second.next();
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'ghosts'"), std::string::npos) << e.what();
  }
}

TEST(LoaderTest, QuotaOfZeroIsAConfigError) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{10}, 0.01);
  auto b = std::make_shared<MemSource>("b", std::vector<int64_t>{10}, 0.99);
  try {
    Loader loader(as_sources({a, b}), options(8, 1), test_hooks());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.sources.0.fraction"), std::string::npos) << e.what();
  }
}

TEST(LoaderTest, StopsCleanlyWhileBatchesAreInFlight) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>(50, 20));
  for (int round = 0; round < 5; ++round) {
    Loader loader(as_sources({a}), options(16, 3), test_hooks());
    if (round % 2) loader.next();
  }  // destructors join with full queues and no consumer
  SUCCEED();
}

TEST(LoaderTest, BatchesStayIntactWhileHeldAndAfterTheLoader) {
  // Batch memory is recycled once a batch is released: batches still held must keep their
  // values while later ones are made, and after the loader is gone. Channel 0 of every test
  // image is a hash of its key (test_hooks), which is the truth checked here.
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{40, 40});
  const auto check = [](const Batch& b) {
    ASSERT_EQ(b.images.size(0), static_cast<int64_t>(b.keys.size()));
    for (size_t j = 0; j < b.keys.size(); ++j) {
      const double want = static_cast<double>(std::hash<std::string>{}(b.keys[j]) % 100000);
      EXPECT_TRUE(torch::all(b.images[static_cast<int64_t>(j)][0] == want).item<bool>())
          << "sample " << b.keys[j] << " of batch " << b.index;
    }
  };
  std::vector<Batch> held;
  {
    Loader loader(as_sources({a}), options(6, 2), test_hooks());
    for (int i = 0; i < 12; ++i) {
      Batch b = loader.next();
      check(b);
      if (i % 3 == 0) held.push_back(std::move(b));  // the others are released at once
    }
    for (const auto& b : held) check(b);
  }
  ASSERT_EQ(held.size(), 4u);
  for (const auto& b : held) check(b);
  for (size_t i = 1; i < held.size(); ++i) {
    EXPECT_NE(held[i].images.data_ptr(), held[i - 1].images.data_ptr());
  }
}

TEST(LoaderTest, TransformReturningAViewOfTheSampleIsCopied) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{8});
  LoaderHooks hooks = test_hooks();
  hooks.image_transform = [](const RawSample& s, uint64_t) {
    // A view of the encoded bytes (the key text), no copy.
    auto view = torch::from_blob(const_cast<uint8_t*>(s.image_bytes.data()), {3, 1, 1}, torch::kUInt8);
    return view;
  };
  Loader loader(as_sources({a}), options(4, 2), hooks);
  for (int i = 0; i < 2; ++i) {
    const Batch b = loader.next();
    for (int64_t j = 0; j < 4; ++j) {
      const std::string& key = b.keys[static_cast<size_t>(j)];  // "a:0:<i>"
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_EQ(b.images[j][c][0][0].item<uint8_t>(), static_cast<uint8_t>(key[static_cast<size_t>(c)]));
      }
    }
  }
}

TEST(LoaderTest, HookErrorsOtherThanDataErrorStopTheLoader) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{10});
  LoaderHooks hooks = test_hooks();
  hooks.tokenize = [](const std::vector<std::string>&) -> torch::Tensor {
    throw std::runtime_error("tokenizer exploded");
  };
  Loader loader(as_sources({a}), options(4, 2), hooks);
  EXPECT_THROW(loader.next(), std::runtime_error);
}

// A real row source through the loader on two ranks: one shard for two ranks, so the
// ranks split it by sample position; together they see every image once per epoch.
TEST(LoaderTest, FolderSourceSplitAcrossTwoRanks) {
  coca::testing::TempDir dir;
  std::set<std::string> all;
  for (const char* cls : {"c0", "c1", "c2"}) {
    for (int i = 0; i < 4; ++i) {
      const std::string rel = std::string(cls) + "/" + std::to_string(i) + ".jpg";
      coca::testing::write_file(dir / rel, rel);
      all.insert(rel);
    }
  }
  SourceConfig cfg;
  cfg.type = "folder";
  cfg.text = "label";
  cfg.path = dir.path().string();
  std::shared_ptr<const Source> folder = detail::make_folder_source(cfg, "data.sources.0");
  LoaderHooks hooks = test_hooks();
  hooks.make_text = [](const RawSample& s, const SourceConfig&, uint64_t, int64_t) {
    return "a photo of a " + s.labels.at(0);
  };
  std::multiset<std::string> seen;
  for (int rank = 0; rank < 2; ++rank) {
    Loader loader({folder}, options(3, 2, rank, 2), hooks);
    for (int b = 0; b < 2; ++b) {
      const Batch batch = loader.next();
      for (size_t i = 0; i < 3; ++i) {
        seen.insert(batch.keys[i]);
        EXPECT_EQ(batch.texts[i], "a photo of a " + batch.keys[i].substr(0, 2));
        EXPECT_EQ(batch.label_ids[i], std::vector<int64_t>{batch.keys[i][1] - '0'});
      }
    }
  }
  EXPECT_EQ(seen.size(), all.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
}

TEST(LoaderTest, TextHookPicksCaptionsOrLabels) {
  RawSample s;
  s.captions = {"c0", "c1", "c2", "c3", "c4"};
  s.labels = {"cat", "dog"};
  std::set<std::string> picked;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    picked.insert(choose_caption(s, seed));
    EXPECT_EQ(choose_caption(s, seed), choose_caption(s, seed));
  }
  EXPECT_EQ(picked.size(), 5u);  // every caption gets used
  EXPECT_EQ(choose_caption(RawSample{}, 3), "");
  auto hook = make_text_hook([](const std::vector<std::string>& names, uint64_t, int64_t pos) {
    return names.at(0) + "+" + names.at(1) + "@" + std::to_string(pos);
  });
  SourceConfig caption_cfg, label_cfg;
  label_cfg.text = "label";
  EXPECT_EQ(hook(s, label_cfg, 9, 4), "cat+dog@4");
  EXPECT_EQ(hook(s, caption_cfg, 9, 4), choose_caption(s, 9));
  s.labels.clear();
  EXPECT_EQ(hook(s, label_cfg, 9, 4), "");
}

TEST(LoaderTest, ThroughputCountsTheImagesItTimed) {
  auto a = std::make_shared<MemSource>("a", std::vector<int64_t>{40});
  const LoaderThroughput t = measure_loader_throughput({a}, options(4, 2), test_hooks(), 3);
  EXPECT_EQ(t.images, 12);
  EXPECT_EQ(t.workers, 2);
  EXPECT_GT(t.images_per_second, 0.0);
}

}  // namespace
}  // namespace coca::data
