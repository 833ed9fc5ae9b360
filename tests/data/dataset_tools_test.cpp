#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace
}  // namespace coca::data
