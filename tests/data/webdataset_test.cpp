// WebDataset shards: writer -> reader round trip, key/extension rules, skip reasons,
// truncated tars, and brace expansion of shard patterns.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "coca/common/error.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "coca/data/webdataset.h"
#include "test_utils.h"

namespace coca::data {
namespace {

namespace fs = std::filesystem;

struct ShardSkip {
  SkipReason reason;
  std::string shard;
  std::string key;
  std::string detail;
};

struct ShardContents {
  std::vector<RawSample> samples;
  std::vector<ShardSkip> skips;
};

ShardContents read_shards(const Source& src) {
  ShardContents c;
  for (const auto& shard : src.shards()) {
    auto reader = src.open(shard.index, [&](SkipReason r, const std::string& s,
                                            const std::string& k, const std::string& d) {
      c.skips.push_back({r, s, k, d});
    });
    RawSample s;
    while (reader->next(s)) c.samples.push_back(s);
  }
  return c;
}

std::vector<uint8_t> small_png(uint32_t seed) {
  std::mt19937 rng(seed);
  Image img;
  img.height = 6;
  img.width = 5;
  img.rgb.resize(90);
  for (auto& v : img.rgb) v = static_cast<uint8_t>(rng());
  return encode_image(img, "png");
}

std::vector<uint8_t> small_jpg(uint32_t seed) {
  Image img;
  img.height = 8;
  img.width = 8;
  img.rgb.assign(192, static_cast<uint8_t>(seed * 10));
  return encode_image(img, "jpg");
}

RawSample make_sample(int i) {
  RawSample s;
  s.key = (i % 2 ? "dir/sub/" : "") + std::string("s") + std::to_string(i);
  s.image_name = s.key + (i % 3 == 0 ? ".jpg" : ".png");
  s.image_bytes = i % 3 == 0 ? small_jpg(i) : small_png(i);
  s.captions = {"caption number " + std::to_string(i)};
  s.label_ids = {i % 4};
  if (i % 5 == 0) s.label_ids.push_back(3 - i % 4);
  return s;
}

SourceConfig wds_config(const std::string& path) {
  SourceConfig cfg;
  cfg.type = "webdataset";
  cfg.path = path;
  return cfg;
}

TEST(WebDatasetTest, SplitsMemberNamesAtTheFirstDotOfTheFileName) {
  EXPECT_EQ(split_member_name("a/b.c/x.seg.png"),
            (std::pair<std::string, std::string>{"a/b.c/x", "seg.png"}));
  EXPECT_EQ(split_member_name("./000001.txt"),
            (std::pair<std::string, std::string>{"000001", "txt"}));
  EXPECT_EQ(split_member_name("noext"), (std::pair<std::string, std::string>{"noext", ""}));
}

TEST(WebDatasetTest, WriterThenReaderRoundTrip) {
  testing::TempDir dir;
  {
    WebDatasetWriter w(dir.path().string(), "part", 3);
    for (int i = 0; i < 7; ++i) w.write(make_sample(i));
    const auto shards = w.finish();
    ASSERT_EQ(shards.size(), 3u);
    EXPECT_EQ(shards[0], (dir / "part-00000.tar").string());
    EXPECT_EQ(w.samples_written(), 7);
  }
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  testing::write_file(dir / "classes.txt", "0\tzero\n1\tone, uno\n2\ttwo\n3\tthree\n");
  SourceConfig cfg = wds_config((dir / "part-{00000..00002}.tar").string());
  cfg.class_names = (dir / "classes.txt").string();
  const auto src = make_source(cfg, "data.sources.0");
  ASSERT_EQ(src->shards().size(), 3u);
  const ShardContents c = read_shards(*src);
  EXPECT_TRUE(c.skips.empty());
  ASSERT_EQ(c.samples.size(), 7u);
  static const char* kNames[] = {"zero", "one", "two", "three"};
  for (int i = 0; i < 7; ++i) {
    const RawSample want = make_sample(i);
    const RawSample& got = c.samples[i];
    EXPECT_EQ(got.key, want.key);
    EXPECT_EQ(got.image_bytes, want.image_bytes);
    EXPECT_EQ(got.captions, want.captions);
    EXPECT_EQ(got.label_ids, want.label_ids);
    std::vector<std::string> names;
    for (int64_t id : want.label_ids) names.push_back(kNames[id]);
    EXPECT_EQ(got.labels, names);
    EXPECT_NE(got.image_name.find(want.key), std::string::npos);
  }
}

TEST(WebDatasetTest, LongKeysAndDecodedPixelsRoundTrip) {
  testing::TempDir dir;
  RawSample s;
  // Over ustar's 100-character name limit: needs a PAX header.
  s.key = std::string(60, 'd') + "/" + std::string(90, 'k');
  s.height = 3;
  s.width = 4;
  for (int i = 0; i < 36; ++i) s.pixels.push_back(static_cast<uint8_t>(i * 7));
  s.captions = {"first", "second"};
  s.labels = {"cat"};
  {
    WebDatasetWriter w(dir.path().string(), "long", 10);
    w.write(s);
  }
  SourceConfig cfg = wds_config((dir / "long-00000.tar").string());
  cfg.caption_key = "json:captions";
  cfg.label_key = "json:labels";
  const ShardContents c = read_shards(*make_source(cfg, "d"));
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.samples[0].key, s.key);
  EXPECT_EQ(c.samples[0].captions, s.captions);
  EXPECT_EQ(c.samples[0].labels, s.labels);
  const Image img = sample_image(c.samples[0]);  // pixels were stored as a lossless PNG
  EXPECT_EQ(img.height, 3);
  EXPECT_EQ(img.rgb, s.pixels);
}

TEST(WebDatasetTest, SameSamplesGiveIdenticalShards) {
  testing::TempDir a, b;
  for (auto* d : {&a, &b}) {
    WebDatasetWriter w(d->path().string(), "x", 10);
    for (int i = 0; i < 4; ++i) w.write(make_sample(i));
  }
  EXPECT_EQ(testing::read_file(a / "x-00000.tar"), testing::read_file(b / "x-00000.tar"));
}

TEST(WebDatasetTest, SkipsSamplesWithoutImageOrText) {
  testing::TempDir dir;
  {
    WebDatasetWriter w(dir.path().string(), "t", 100);
    w.write("good1", {{"png", small_png(1)}, TarMember::text("txt", "  first  \n")});
    w.write("noimage", {TarMember::text("txt", "orphan caption"), TarMember::text("cls", "1")});
    w.write("notext", {{"jpg", small_jpg(2)}});
    w.write("blank", {{"jpg", small_jpg(3)}, TarMember::text("txt", " \n")});
    w.write("corrupt", {TarMember::text("jpg", "not a jpeg"), TarMember::text("txt", "bad")});
    w.write("good2", {{"webp", small_png(4)}, TarMember::text("txt", "second")});
  }
  const auto src = make_source(wds_config((dir / "t-00000.tar").string()), "data.sources.0");
  const ShardContents c = read_shards(*src);
  ASSERT_EQ(c.samples.size(), 3u);
  EXPECT_EQ(c.samples[0].key, "good1");
  EXPECT_EQ(c.samples[0].captions, std::vector<std::string>{"first"});
  // A corrupt image is passed through; decoding (in the loader) reports it.
  EXPECT_EQ(c.samples[1].key, "corrupt");
  try {
    sample_image(c.samples[1]);
    ADD_FAILURE() << "corrupt image decoded";
  } catch (const DataError& e) {
    EXPECT_EQ(e.sample(), "corrupt");
  }
  EXPECT_EQ(c.samples[2].key, "good2");
  ASSERT_EQ(c.skips.size(), 3u);
  EXPECT_EQ(c.skips[0].key, "noimage");
  EXPECT_EQ(c.skips[0].reason, SkipReason::missing_file);
  EXPECT_EQ(c.skips[1].key, "notext");
  EXPECT_EQ(c.skips[1].reason, SkipReason::empty_text);
  EXPECT_EQ(c.skips[2].key, "blank");
  EXPECT_EQ(c.skips[2].reason, SkipReason::empty_text);
  EXPECT_EQ(c.skips[0].shard, (dir / "t-00000.tar").string());
}

TEST(WebDatasetTest, JsonFieldsAndLabelText) {
  testing::TempDir dir;
  {
    WebDatasetWriter w(dir.path().string(), "j", 100);
    w.write("a", {{"png", small_png(1)},
                  TarMember::text("json", R"({"caption": "from json", "labels": [2, "cat"]})")});
    w.write("b", {{"png", small_png(2)},
                  TarMember::text("json", R"({"caption": ["one", "two"], "labels": 7})")});
    w.write("c", {{"png", small_png(3)}, TarMember::text("json", R"({"other": 1})")});
  }
  testing::write_file(dir / "names.txt", "dog\ncat\nbird\n");  // ids from line order
  SourceConfig cfg = wds_config((dir / "j-00000.tar").string());
  cfg.caption_key = "json:caption";
  cfg.label_key = "json:labels";
  cfg.class_names = (dir / "names.txt").string();
  ShardContents c = read_shards(*make_source(cfg, "data.sources.0"));
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.samples[0].captions, std::vector<std::string>{"from json"});
  EXPECT_EQ(c.samples[0].labels, (std::vector<std::string>{"bird", "cat"}));
  EXPECT_EQ(c.samples[0].label_ids, (std::vector<int64_t>{2, 1}));
  ASSERT_EQ(c.skips.size(), 2u);
  EXPECT_EQ(c.skips[0].key, "b");  // id 7 is not in names.txt
  EXPECT_EQ(c.skips[0].reason, SkipReason::other);
  EXPECT_EQ(c.skips[1].key, "c");
  EXPECT_EQ(c.skips[1].reason, SkipReason::empty_text);

  // text: label needs label names; ids without a class_names file have none.
  cfg.class_names.clear();
  cfg.text = "label";
  c = read_shards(*make_source(cfg, "data.sources.0"));
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.samples[0].labels, std::vector<std::string>{"cat"});
  EXPECT_EQ(c.samples[0].captions, std::vector<std::string>{"from json"});
  EXPECT_EQ(c.samples[0].label_ids, std::vector<int64_t>{2});
  ASSERT_EQ(c.skips.size(), 2u);
  EXPECT_EQ(c.skips[0].reason, SkipReason::empty_text);
}

TEST(WebDatasetTest, ClsMemberFormats) {
  testing::TempDir dir;
  {
    WebDatasetWriter w(dir.path().string(), "c", 100);
    w.write("a", {{"png", small_png(1)}, TarMember::text("txt", "x"), TarMember::text("cls", "1 2")});
    w.write("b", {{"png", small_png(2)}, TarMember::text("txt", "x"),
                  TarMember::text("cls", "red circle\nblue star\n")});
    w.write("c", {{"png", small_png(3)}, TarMember::text("txt", "x"),
                  TarMember::text("cls", "tabby cat")});
  }
  const ShardContents c =
      read_shards(*make_source(wds_config((dir / "c-00000.tar").string()), "data.sources.0"));
  ASSERT_EQ(c.samples.size(), 3u);
  EXPECT_EQ(c.samples[0].label_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.samples[1].labels, (std::vector<std::string>{"red circle", "blue star"}));
  EXPECT_EQ(c.samples[2].labels, std::vector<std::string>{"tabby cat"});
}

void expect_truncated_read(const fs::path& tar, int64_t cut, int written) {
  SCOPED_TRACE("cut at " + std::to_string(cut));
  testing::TempDir dir;
  const std::string bytes = testing::read_file(tar);
  ASSERT_LT(cut, static_cast<int64_t>(bytes.size()));
  {
    std::ofstream out(dir / "cut.tar", std::ios::binary);
    out.write(bytes.data(), cut);
  }
  const ShardContents c =
      read_shards(*make_source(wds_config((dir / "cut.tar").string()), "data.sources.0"));
  EXPECT_GT(c.samples.size(), 0u);
  EXPECT_LT(static_cast<int>(c.samples.size()), written);
  for (size_t i = 0; i < c.samples.size(); ++i) {
    const RawSample want = make_sample(static_cast<int>(i));
    EXPECT_EQ(c.samples[i].key, want.key);
    EXPECT_EQ(c.samples[i].image_bytes, want.image_bytes);
    EXPECT_EQ(c.samples[i].captions, want.captions);
  }
  ASSERT_EQ(c.skips.size(), 1u);
  EXPECT_EQ(c.skips[0].reason, SkipReason::truncated_shard);
  EXPECT_EQ(c.skips[0].shard, (dir / "cut.tar").string());
}

TEST(WebDatasetTest, TruncatedTarYieldsTheSamplesBeforeTheDamage) {
  testing::TempDir dir;
  {
    WebDatasetWriter w(dir.path().string(), "big", 100);
    for (int i = 0; i < 12; ++i) w.write(make_sample(i));
  }
  const fs::path tar = dir / "big-00000.tar";
  const auto size = static_cast<int64_t>(fs::file_size(tar));
  expect_truncated_read(tar, size / 2 + 100, 12);  // inside a member's data or header
  expect_truncated_read(tar, size / 2 / 512 * 512, 12);  // at a block boundary
}

TEST(WebDatasetTest, UnreadableShardReportsOnce) {
  testing::TempDir dir;
  testing::write_file(dir / "bad.tar", std::string(700, 'x'));
  const ShardContents c =
      read_shards(*make_source(wds_config((dir / "bad.tar").string()), "data.sources.0"));
  EXPECT_TRUE(c.samples.empty());
  ASSERT_EQ(c.skips.size(), 1u);
  EXPECT_EQ(c.skips[0].reason, SkipReason::truncated_shard);
}

TEST(WebDatasetTest, MissingShardsAndBadConfig) {
  testing::TempDir dir;
  EXPECT_THROW(make_source(wds_config((dir / "none-{0..3}.tar").string()), "data.sources.0"),
               DataError);
  EXPECT_THROW(make_source(wds_config(""), "data.sources.0"), ConfigError);
  SourceConfig cfg = wds_config("x.tar");
  cfg.type = "nosuchtype";
  EXPECT_THROW(make_source(cfg, "data.sources.0"), ConfigError);
  {
    WebDatasetWriter w(dir.path().string(), "some", 1);
    w.write(make_sample(0));
  }
  // Missing shards of a pattern are dropped with a warning when at least one exists.
  const auto src = make_source(wds_config((dir / "some-{00000..00003}.tar").string()), "d");
  EXPECT_EQ(src->shards().size(), 1u);
  // A folder lists its tars.
  EXPECT_EQ(make_source(wds_config(dir.path().string()), "d")->shards().size(), 1u);
}

TEST(WebDatasetTest, WriterRejectsBadKeys) {
  testing::TempDir dir;
  WebDatasetWriter w(dir.path().string(), "w", 5);
  EXPECT_THROW(w.write("a.b", {TarMember::text("txt", "x")}), std::invalid_argument);
  EXPECT_THROW(w.write("", {TarMember::text("txt", "x")}), std::invalid_argument);
  EXPECT_THROW(w.write("k", {TarMember::text("", "x")}), std::invalid_argument);
  EXPECT_THROW(WebDatasetWriter(dir.path().string(), "w", 0), std::invalid_argument);
}

TEST(ExpandBracesTest, RangesPaddingAlternativesAndGroups) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_braces("shards/{00000..00002}.tar"),
            (V{"shards/00000.tar", "shards/00001.tar", "shards/00002.tar"}));
  EXPECT_EQ(expand_braces("{8..11}"), (V{"8", "9", "10", "11"}));
  EXPECT_EQ(expand_braces("{08..11}"), (V{"08", "09", "10", "11"}));
  EXPECT_EQ(expand_braces("{3..1}"), (V{"3", "2", "1"}));
  EXPECT_EQ(expand_braces("{a,b}/x"), (V{"a/x", "b/x"}));
  EXPECT_EQ(expand_braces("{a,b}-{0..1}.tar"), (V{"a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"}));
  EXPECT_EQ(expand_braces("{x{1..2},y}"), (V{"x1", "x2", "y"}));
  EXPECT_EQ(expand_braces("{a,}b"), (V{"ab", "b"}));
  EXPECT_EQ(expand_braces("plain.tar"), (V{"plain.tar"}));
  EXPECT_EQ(expand_braces("lit{x}-{1..2}"), (V{"lit{x}-1", "lit{x}-2"}));
  EXPECT_THROW(expand_braces("bad{0..2"), std::invalid_argument);
  EXPECT_EQ(expand_braces("{0..199}").size(), 200u);
}

}  // namespace
}  // namespace coca::data
