#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "coca/data/dataset_tools.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "coca/data/synthetic.h"
#include "coca/data/webdataset.h"
#include "test_utils.h"

namespace coca::data {
namespace {

using coca::testing::TempDir;

/// 10 synthetic samples as a shard, of which samples 3 and 7 carry corrupt PNG bytes and
/// sample 5 has no caption.
std::string write_planted_shard(const TempDir& dir) {
  WebDatasetWriter writer(dir.path().string(), "planted", 100);
  for (int64_t i = 0; i < 10; ++i) {
    RawSample s = synthetic_sample(1, i, 32);
    if (i == 3 || i == 7) {
      Image image{s.height, s.width, s.pixels};
      s.image_bytes = encode_image(image, "png");
      s.image_bytes.resize(s.image_bytes.size() / 2);  // truncated PNG
      s.image_name = s.key + ".png";
      s.pixels.clear();
    }
    if (i == 5) s.captions.clear();
    writer.write(s);
  }
  return writer.finish().front();
}

TEST(DatasetToolsTest, InspectCountsPlantedProblems) {
  TempDir dir;
  SourceConfig src;
  src.type = "webdataset";
  src.path = write_planted_shard(dir);
  const auto report = inspect_source(src, "PATH", 0, 2, /*decode=*/true);
  EXPECT_EQ(report.shards, 1);
  EXPECT_EQ(report.samples, 7);
  EXPECT_EQ(report.skipped[static_cast<size_t>(SkipReason::corrupt_image)], 2);
  EXPECT_EQ(report.skipped[static_cast<size_t>(SkipReason::empty_text)], 1);
  ASSERT_EQ(report.examples.size(), 2u);
  EXPECT_EQ(report.examples[0].height, 32);
  EXPECT_EQ(report.problems.size(), 3u);
  const auto text = format_report(report);
  EXPECT_NE(text.find("corrupt_image"), std::string::npos) << text;
}

TEST(DatasetToolsTest, ConvertKeepsReadableSamplesExactly) {
  TempDir dir;
  SourceConfig src;
  src.type = "webdataset";
  src.path = write_planted_shard(dir);
  const auto out = dir / "converted";
  const auto stats = convert_source(src, "PATH", out.string(), "part", 4, 0, /*decode=*/true);
  EXPECT_EQ(stats.samples, 7);
  EXPECT_EQ(stats.shards.size(), 2u);  // 7 samples, 4 per shard
  SourceConfig back;
  back.type = "webdataset";
  back.path = out.string();
  const auto report = inspect_source(back, "PATH", 0, 0, true);
  EXPECT_EQ(report.samples, 7);
  int64_t skipped = 0;
  for (auto n : report.skipped) skipped += n;
  EXPECT_EQ(skipped, 0);
}

TEST(DatasetToolsTest, WebDatasetKeyReplacesDotsOfTheFileNameOnly) {
  EXPECT_EQ(webdataset_key("stamps.v2/animals/frog-1.png"), "stamps.v2/animals/frog-1_png");
  EXPECT_EQ(webdataset_key("train-images-idx3-ubyte.gz#12"), "train-images-idx3-ubyte_gz#12");
  EXPECT_EQ(webdataset_key("000042"), "000042");
}

TEST(DatasetToolsTest, ConvertsALabelledManifestWithDottedFileNames) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) {
    RawSample s = synthetic_sample(2, i, 16);
    Image image{s.height, s.width, s.pixels};
    coca::testing::write_file(dir / "img" / ("s." + std::to_string(i) + ".png"),
                              [&] {
                                const auto bytes = encode_image(image, "png");
                                return std::string(bytes.begin(), bytes.end());
                              }());
  }
  coca::testing::write_file(dir / "m.tsv",
                            "filepath\ttitle\tcategory\n"
                            "img/s.0.png\tA frog.\tanimals\n"
                            "img/s.1.png\tA bus.\tvehicles\n"
                            "img/s.2.png\tA toad.\tanimals\n");
  SourceConfig src;
  src.type = "manifest";
  src.path = (dir / "m.tsv").string();
  src.label_column = "category";
  const auto out = dir / "converted";
  const auto stats = convert_source(src, "data.sources.0", out.string(), "val", 10, 0, true);
  ASSERT_EQ(stats.samples, 3);
  ASSERT_EQ(stats.shards.size(), 1u);
  EXPECT_EQ(std::filesystem::path(stats.shards[0]).filename(), "val-00000.tar");
  ASSERT_FALSE(stats.classes_file.empty());

  SourceConfig back;
  back.type = "webdataset";
  back.path = stats.shards[0];
  back.class_names = stats.classes_file;
  back.text = "label";
  const auto source = make_source(back, "PATH");
  std::map<std::string, RawSample> by_key;
  const SkipFn on_skip = [](SkipReason, const std::string&, const std::string& key,
                            const std::string& detail) { ADD_FAILURE() << key << ": " << detail; };
  auto reader = source->open(0, on_skip);
  for (RawSample s; reader->next(s);) by_key[s.key] = s;
  ASSERT_EQ(by_key.size(), 3u);
  ASSERT_TRUE(by_key.count("img/s_2_png"));
  const RawSample& toad = by_key["img/s_2_png"];
  EXPECT_EQ(toad.captions, std::vector<std::string>{"A toad."});
  EXPECT_EQ(toad.label_ids, std::vector<int64_t>{0});
  EXPECT_EQ(by_key["img/s_1_png"].label_ids, std::vector<int64_t>{1});
  const auto names = source->class_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], std::vector<std::string>{"animals"});
  EXPECT_EQ(names[1], std::vector<std::string>{"vehicles"});
}

}  // namespace
}  // namespace coca::data
