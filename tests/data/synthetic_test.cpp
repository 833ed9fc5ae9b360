// Synthetic shapes source: determinism, caption/label/pixel consistency, the source's
// shards and `coca data synth` read back through the webdataset source.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "coca/common/error.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "coca/data/synthetic.h"
#include "test_utils.h"

namespace coca::data {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(SyntheticTest, SameSeedAndIndexGiveTheSameSample) {
  for (int64_t i : {0, 1, 17, 123456}) {
    const SynthScene a = make_synthetic_scene(5, i, 64);
    const SynthScene b = make_synthetic_scene(5, i, 64);
    EXPECT_EQ(a.image.rgb, b.image.rgb);
    EXPECT_EQ(a.caption, b.caption);
    EXPECT_EQ(a.label_ids, b.label_ids);
  }
  EXPECT_NE(make_synthetic_scene(5, 0, 64).image.rgb, make_synthetic_scene(5, 1, 64).image.rgb);
  EXPECT_NE(make_synthetic_scene(5, 0, 64).image.rgb, make_synthetic_scene(6, 0, 64).image.rgb);
}

TEST(SyntheticTest, CaptionLabelsAndPixelsAgree) {
  const auto& shapes = synthetic_shapes();
  const auto& colours = synthetic_colours();
  const auto& rgb = synthetic_colour_rgb();
  const auto classes = synthetic_class_names();
  ASSERT_EQ(classes.size(), shapes.size() * colours.size());
  std::set<std::string> captions;
  std::set<int64_t> first_labels;
  for (int64_t i = 0; i < 300; ++i) {
    const SynthScene s = make_synthetic_scene(11, i, 64);
    SCOPED_TRACE(s.caption);
    captions.insert(s.caption);
    ASSERT_GE(s.objects.size(), 1u);
    ASSERT_LE(s.objects.size(), 3u);
    const int64_t groups = s.relation.empty() ? 1 : 2;
    ASSERT_EQ(static_cast<int64_t>(s.label_ids.size()), groups);
    first_labels.insert(s.label_ids[0]);
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<const SynthObject*> members;
      for (const auto& o : s.objects) {
        if (o.group == g) members.push_back(&o);
      }
      ASSERT_FALSE(members.empty());
      const SynthObject& o = *members[0];
      // Label = "<colour> <shape>" of the group, with the class-list id.
      EXPECT_EQ(s.labels[g], colours[o.colour] + " " + shapes[o.shape]);
      EXPECT_EQ(classes[s.label_ids[g]], s.labels[g]);
      // The caption names the group with the right count word, size and plural.
      static const char* kCount[] = {"", "a", "two", "three"};
      const std::string phrase = std::string(kCount[members.size()]) + " " +
                                 (o.large ? "large" : "small") + " " + colours[o.colour] + " " +
                                 shapes[o.shape] + (members.size() > 1 ? "s" : "");
      EXPECT_TRUE(contains(s.caption, phrase)) << phrase;
      if (g == 0) {
        EXPECT_EQ(s.caption.rfind(phrase, 0), 0u) << "first group first";
      }
      for (const SynthObject* m : members) {
        // Every pixel at an object's centre has exactly the object's colour.
        const uint8_t* p = s.image.pixel(static_cast<int64_t>(m->y), static_cast<int64_t>(m->x));
        EXPECT_EQ(p[0], rgb[m->colour][0]);
        EXPECT_EQ(p[1], rgb[m->colour][1]);
        EXPECT_EQ(p[2], rgb[m->colour][2]);
        EXPECT_EQ(m->colour, o.colour);
        EXPECT_EQ(m->shape, o.shape);
      }
    }
    if (groups == 2) {
      EXPECT_NE(s.label_ids[0], s.label_ids[1]);
      EXPECT_TRUE(contains(s.caption, " " + s.relation + " "));
      // The relation holds between every pair across the two groups.
      for (const auto& a : s.objects) {
        for (const auto& b : s.objects) {
          if (a.group != 0 || b.group != 1) continue;
          if (s.relation == "to the left of") {
            EXPECT_LT(a.x, b.x);
          }
          if (s.relation == "to the right of") {
            EXPECT_GT(a.x, b.x);
          }
          if (s.relation == "above") {
            EXPECT_LT(a.y, b.y);
          }
          if (s.relation == "below") {
            EXPECT_GT(a.y, b.y);
          }
        }
      }
    }
    // Background pixels (away from every object) are never an object colour.
    for (int64_t y = 0; y < 64; y += 3) {
      for (int64_t x = 0; x < 64; x += 3) {
        bool near = false;
        for (const auto& o : s.objects) {
          const double e = 1.15 * o.radius + 2;
          near |= std::abs(x + 0.5 - o.x) < e && std::abs(y + 0.5 - o.y) < e;
        }
        if (near) continue;
        const uint8_t* p = s.image.pixel(y, x);
        for (const auto& c : rgb) {
          const int d = std::abs(p[0] - c[0]) + std::abs(p[1] - c[1]) + std::abs(p[2] - c[2]);
          ASSERT_GT(d, 60) << "background pixel " << y << "," << x << " looks like an object";
        }
      }
    }
  }
  EXPECT_GT(captions.size(), 200u);
  EXPECT_GT(first_labels.size(), 24u);
}

TEST(SyntheticTest, SourceSplitsIntoShardsOfFixedSamples) {
  SourceConfig cfg;
  cfg.type = "synthetic";
  cfg.samples = 2500;
  cfg.seed = 3;
  cfg.image_size = 32;
  const auto src = make_source(cfg, "data.sources.0");
  ASSERT_EQ(src->shards().size(), 3u);
  EXPECT_EQ(src->shards()[2].samples, 500);
  auto reader = src->open(1, nullptr);
  RawSample s;
  int64_t n = 0;
  while (reader->next(s)) {
    if (n == 0) {
      EXPECT_EQ(s.key, "00001000");
      const SynthScene want = make_synthetic_scene(3, 1000, 32);
      EXPECT_EQ(s.pixels, want.image.rgb);
      EXPECT_EQ(s.captions, std::vector<std::string>{want.caption});
      EXPECT_EQ(s.label_ids, want.label_ids);
      EXPECT_EQ(s.height, 32);
    }
    ++n;
  }
  EXPECT_EQ(n, 1000);

  cfg.samples = 0;
  EXPECT_THROW(make_source(cfg, "data.sources.0"), ConfigError);
}

TEST(SyntheticTest, SynthCommandWritesReadableShards) {
  testing::TempDir dir;
  const auto r = testing::run_coca("data synth --out '" + dir.path().string() +
                                   "' --samples 30 --seed 4 --size 32 --shard-size 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "wrote 30 samples")) << r.out;
  ASSERT_TRUE(std::filesystem::exists(dir / "train-00000.tar"));
  ASSERT_TRUE(std::filesystem::exists(dir / "train-00001.tar"));
  EXPECT_FALSE(std::filesystem::exists(dir / "train-00002.tar"));
  const std::string classes = testing::read_file(dir / "classes.txt");
  EXPECT_EQ(std::count(classes.begin(), classes.end(), '\n'), 28);
  EXPECT_TRUE(contains(classes, "0\tred circle\n"));

  SourceConfig cfg;
  cfg.type = "webdataset";
  cfg.path = (dir / "train-{00000..00001}.tar").string();
  cfg.class_names = (dir / "classes.txt").string();
  const auto src = make_source(cfg, "data.sources.0");
  ASSERT_EQ(src->shards().size(), 2u);
  int64_t index = 0;
  for (const auto& shard : src->shards()) {
    auto reader = src->open(shard.index, [](SkipReason r, const std::string&, const std::string& k,
                                            const std::string& d) {
      ADD_FAILURE() << "skipped " << k << ": " << to_string(r) << " " << d;
    });
    RawSample s;
    while (reader->next(s)) {
      const SynthScene want = make_synthetic_scene(4, index, 32);
      EXPECT_EQ(s.captions, std::vector<std::string>{want.caption});
      EXPECT_EQ(s.labels, want.labels);
      EXPECT_EQ(s.label_ids, want.label_ids);
      EXPECT_EQ(decode_image(s.image_bytes, s.image_name).rgb, want.image.rgb);  // PNG: lossless
      ++index;
    }
  }
  EXPECT_EQ(index, 30);
}

}  // namespace
}  // namespace coca::data
