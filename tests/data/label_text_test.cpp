// Labels as text (paper §4.1): determinism per (seed, position), every name exactly once,
// template sampling, CLIP's 80 templates, and template files.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "coca/common/error.h"
#include "coca/data/label_text.h"
#include "test_utils.h"

namespace coca::data {
namespace {

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

TEST(LabelTextTest, FillsThePlaceholder) {
  LabelTextConfig cfg;
  EXPECT_EQ(label_text({"cat"}, 0, 0, cfg, {"a photo of the {}."}), "a photo of the cat.");
  cfg.shuffle = false;
  EXPECT_EQ(label_text({"cat", "animal"}, 5, 9, cfg, {"a photo of the {}."}),
            "a photo of the cat, animal.");
  cfg.separator = " and ";
  EXPECT_EQ(label_text({"cat", "animal"}, 5, 9, cfg, {"{} / {}"}), "cat and animal / cat and animal");
  EXPECT_THROW(label_text({}, 0, 0, cfg, {"{}"}), std::invalid_argument);
  EXPECT_THROW(label_text({"cat"}, 0, 0, cfg, {}), std::invalid_argument);
}

TEST(LabelTextTest, SameSeedAndPositionGiveTheSameText) {
  const LabelTextConfig cfg;
  const std::vector<std::string> names = {"cat", "animal", "pet", "mammal", "tabby"};
  for (uint64_t pos = 0; pos < 50; ++pos) {
    EXPECT_EQ(label_text(names, 42, pos, cfg, clip_imagenet_templates()),
              label_text(names, 42, pos, cfg, clip_imagenet_templates()));
  }
}

TEST(LabelTextTest, EveryNameAppearsExactlyOnceAndOrdersVary) {
  const LabelTextConfig cfg;
  const std::vector<std::string> names = {"cat", "animal", "pet", "mammal"};
  std::set<std::vector<std::string>> orders;
  for (uint64_t pos = 0; pos < 40; ++pos) {
    const auto parts = split(label_text(names, 3, pos, cfg, {"{}"}), ", ");
    auto sorted = parts;
    std::sort(sorted.begin(), sorted.end());
    auto want = names;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(sorted, want) << "position " << pos;
    orders.insert(parts);
  }
  // 24 orders exist; 40 draws from a working shuffle hit well over a few of them.
  EXPECT_GE(orders.size(), 8u);
}

TEST(LabelTextTest, TemplatesVaryWithPositionAndSeed) {
  const LabelTextConfig cfg;
  std::set<std::string> texts;
  for (uint64_t pos = 0; pos < 100; ++pos) {
    texts.insert(label_text({"zebra"}, 1, pos, cfg, clip_imagenet_templates()));
  }
  EXPECT_GE(texts.size(), 40u);  // ~57 distinct expected from 100 draws of 80
  int differ = 0;
  for (uint64_t pos = 0; pos < 20; ++pos) {
    differ += label_text({"zebra"}, 1, pos, cfg, clip_imagenet_templates()) !=
              label_text({"zebra"}, 2, pos, cfg, clip_imagenet_templates());
  }
  EXPECT_GE(differ, 10);
}

TEST(LabelTextTest, ClipHasEightyDistinctImageNetTemplates) {
  const auto& t = clip_imagenet_templates();
  ASSERT_EQ(t.size(), 80u);
  EXPECT_EQ(std::set<std::string>(t.begin(), t.end()).size(), 80u);
  for (const auto& s : t) EXPECT_NE(s.find("{}"), std::string::npos) << s;
  // First and last of CLIP's list (Prompt_Engineering_for_ImageNet notebook).
  EXPECT_EQ(t.front(), "a bad photo of a {}.");
  EXPECT_EQ(t.back(), "a tattoo of the {}.");
  EXPECT_EQ(std::count(t.begin(), t.end(), "itap of a {}."), 1);
}

TEST(LabelTextTest, LoadsTemplateFilesAndNamesTheBadLine) {
  coca::testing::TempDir dir;
  coca::testing::write_file(dir / "ok.txt", "a photo of {}.\r\n\nart of {}\n");
  EXPECT_EQ(load_templates((dir / "ok.txt").string()),
            (std::vector<std::string>{"a photo of {}.", "art of {}"}));
  LabelTextConfig cfg;
  cfg.templates = (dir / "ok.txt").string();
  EXPECT_EQ(make_templates(cfg).size(), 2u);
  cfg.templates.clear();
  EXPECT_EQ(make_templates(cfg).size(), 80u);

  coca::testing::write_file(dir / "bad.txt", "a photo of {}.\n\na photo of a thing\n");
  try {
    load_templates((dir / "bad.txt").string());
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_templates((dir / "missing.txt").string()), IoError);
  coca::testing::write_file(dir / "empty.txt", "\n\n");
  EXPECT_THROW(load_templates((dir / "empty.txt").string()), IoError);
}

}  // namespace
}  // namespace coca::data
