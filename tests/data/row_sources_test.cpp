// Manifest, folder, COCO, Karpathy and IDX sources on files written at test time.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "coca/common/error.h"
#include "coca/data/class_names.h"
#include "coca/config/config_io.h"
#include "coca/config/run_config.h"
#include "coca/data/sources.h"
#include "data/detail/source_factories.h"
#include "data/detail/row_source.h"
#include "test_utils.h"

namespace coca::data {
namespace {

using coca::testing::TempDir;
using coca::testing::write_file;

struct Skip {
  SkipReason reason;
  std::string key;
};

struct ReadAll {
  std::vector<RawSample> samples;
  std::vector<Skip> skips;
};

/// Every sample of every shard, in shard order.
ReadAll read_all(const Source& source) {
  ReadAll r;
  const SkipFn on_skip = [&](SkipReason reason, const std::string&, const std::string& key,
                             const std::string&) { r.skips.push_back({reason, key}); };
  for (const auto& shard : source.shards()) {
    auto reader = source.open(shard.index, on_skip);
    RawSample s;
    while (reader->next(s)) r.samples.push_back(s);
  }
  return r;
}

const RawSample* find_key(const ReadAll& r, const std::string& key) {
  for (const auto& s : r.samples) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

int count_reason(const ReadAll& r, SkipReason reason) {
  return static_cast<int>(std::count_if(r.skips.begin(), r.skips.end(),
                                         [&](const Skip& s) { return s.reason == reason; }));
}

TEST(ManifestSourceTest, ParsesQuotedCsvAndSkipsMissingFilesAndEmptyCaptions) {
  TempDir dir;
  write_file(dir / "img/a.ppm", "P3 1 1 255 1 2 3");
  write_file(dir / "img/b.ppm", "P3 1 1 255 4 5 6");
  write_file(dir / "img/c.ppm", "P3 1 1 255 7 8 9");
  write_file(dir / "m.csv",
             "filepath,title\r\n"
             "img/a.ppm,\"a cat, sitting\"\r\n"
             "\"img/b.ppm\",\"say \"\"hi\"\"\ntwice\"\n"
             "\n"
             "img/missing.ppm,a ghost\n"
             "img/c.ppm,   \n");
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.name = "m";
  cfg.path = (dir / "m.csv").string();
  cfg.separator = ",";
  auto source = detail::make_manifest_source(cfg, "data.sources.0");
  ASSERT_EQ(source->shards().size(), 1u);
  EXPECT_EQ(source->shards()[0].name, "m[0:4)");
  const ReadAll r = read_all(*source);
  ASSERT_EQ(r.samples.size(), 2u);
  const RawSample* a = find_key(r, "img/a.ppm");
  const RawSample* b = find_key(r, "img/b.ppm");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->captions, std::vector<std::string>{"a cat, sitting"});
  EXPECT_EQ(b->captions, std::vector<std::string>{"say \"hi\"\ntwice"});
  EXPECT_EQ(a->image_bytes, bytes_of("P3 1 1 255 1 2 3"));
  EXPECT_EQ(b->image_bytes, bytes_of("P3 1 1 255 4 5 6"));
  EXPECT_EQ(count_reason(r, SkipReason::missing_file), 1);
  EXPECT_EQ(count_reason(r, SkipReason::empty_text), 1);
  EXPECT_EQ(r.skips.size(), 2u);
}

TEST(ManifestSourceTest, TsvWithCustomColumnsAndImageRoot) {
  TempDir dir;
  write_file(dir / "images/x.jpg", "xx");
  write_file(dir / "lists/m.tsv", "id\tcap\tpath\n7\tsome \"quoted\" words\tx.jpg\n");
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.path = (dir / "lists/m.tsv").string();
  cfg.image_root = (dir / "images").string();
  cfg.filepath_column = "path";
  cfg.title_column = "cap";
  const ReadAll r = read_all(*detail::make_manifest_source(cfg, "data.sources.1"));
  ASSERT_EQ(r.samples.size(), 1u);
  EXPECT_EQ(r.samples[0].captions[0], "some \"quoted\" words");
  EXPECT_EQ(r.samples[0].image_bytes, bytes_of("xx"));
}

TEST(ManifestSourceTest, LabelColumnGivesClassIdsInTheNamesFileOrder) {
  TempDir dir;
  for (const char* f : {"a.png", "b.png", "c.png", "d.png"}) write_file(dir / f, "xx");
  write_file(dir / "m.tsv",
             "filepath\ttitle\tcategory\n"
             "a.png\tA frog.\tanimals\n"
             "b.png\tA bus.\tvehicles\n"
             "c.png\tA cake.\tfood\n"
             "d.png\tA pear.\tplants\n");
  // File order, not sorted order, fixes the ids; "plants" is no class, "space" has no row.
  write_file(dir / "classes.txt", "vehicles\nanimals\nfood\nspace\n");
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.path = (dir / "m.tsv").string();
  cfg.label_column = "category";
  cfg.class_names = (dir / "classes.txt").string();
  cfg.text = "label";
  auto source = detail::make_manifest_source(cfg, "data.sources.0");
  const ReadAll r = read_all(*source);
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(count_reason(r, SkipReason::other), 1);
  const RawSample* a = find_key(r, "a.png");
  const RawSample* b = find_key(r, "b.png");
  const RawSample* c = find_key(r, "c.png");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->label_ids, std::vector<int64_t>{1});
  EXPECT_EQ(b->label_ids, std::vector<int64_t>{0});
  EXPECT_EQ(c->label_ids, std::vector<int64_t>{2});
  EXPECT_EQ(a->labels, std::vector<std::string>{"animals"});
  EXPECT_EQ(a->captions, std::vector<std::string>{"A frog."});
  const auto names = source->class_names();
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names[3], std::vector<std::string>{"space"});

  // Without a names file the ids are the sorted labels found.
  cfg.class_names.clear();
  auto sorted = detail::make_manifest_source(cfg, "data.sources.0");
  const ReadAll rs = read_all(*sorted);
  ASSERT_EQ(rs.samples.size(), 4u);
  EXPECT_EQ(find_key(rs, "d.png")->label_ids, std::vector<int64_t>{2});  // animals food plants
  EXPECT_EQ(sorted->class_names().size(), 4u);

  // Labels as text need the label column; a missing column is named.
  cfg.label_column.clear();
  EXPECT_THROW(detail::make_manifest_source(cfg, "data.sources.0"), ConfigError);
  cfg.label_column = "nope";
  EXPECT_THROW(detail::make_manifest_source(cfg, "data.sources.0"), ConfigError);
}

TEST(ManifestSourceTest, RowsAreSplitIntoShardsCoveringEveryRowOnce) {
  TempDir dir;
  write_file(dir / "x.ppm", "x");
  std::string text = "filepath\ttitle\n";
  const int rows = 1100;
  for (int i = 0; i < rows; ++i) text += "x.ppm\tcaption " + std::to_string(i) + "\n";
  write_file(dir / "m.tsv", text);
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.name = "big";
  cfg.path = (dir / "m.tsv").string();
  auto source = detail::make_manifest_source(cfg, "data.sources.0");
  ASSERT_EQ(source->shards().size(), 3u);
  EXPECT_EQ(source->shards()[1].name, "big[512:1024)");
  EXPECT_EQ(source->shards()[2].samples, rows - 1024);
  const ReadAll r = read_all(*source);
  std::set<std::string> captions;
  for (const auto& s : r.samples) captions.insert(s.captions.at(0));
  EXPECT_EQ(captions.size(), static_cast<size_t>(rows));
  // The first shard mixes rows from the whole file (shards of a sorted folder must not
  // hold one class each).
  int from_end = 0;
  auto reader = source->open(0, {});
  RawSample s;
  while (reader->next(s)) from_end += std::stoi(s.captions[0].substr(8)) >= 550;
  EXPECT_GT(from_end, 100);

  cfg.samples = 10;
  EXPECT_EQ(read_all(*detail::make_manifest_source(cfg, "data.sources.0")).samples.size(), 10u);
}

TEST(ManifestSourceTest, ShortLineIsSkippedAsOther) {
  TempDir dir;
  write_file(dir / "a.jpg", "a");
  write_file(dir / "m.tsv", "title\tfilepath\nok\ta.jpg\nno file column\n");
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.path = (dir / "m.tsv").string();
  const ReadAll r = read_all(*detail::make_manifest_source(cfg, "data.sources.0"));
  ASSERT_EQ(r.samples.size(), 1u);
  EXPECT_EQ(r.samples[0].captions[0], "ok");
  ASSERT_EQ(r.skips.size(), 1u);
  EXPECT_EQ(r.skips[0].reason, SkipReason::other);
  EXPECT_NE(r.skips[0].key.find(":3"), std::string::npos) << r.skips[0].key;  // line 3
}

TEST(ManifestSourceTest, BadHeaderOrQuotingIsAnError) {
  TempDir dir;
  write_file(dir / "m.tsv", "file\ttitle\na.jpg\tx\n");
  SourceConfig cfg;
  cfg.type = "manifest";
  cfg.path = (dir / "m.tsv").string();
  try {
    detail::make_manifest_source(cfg, "data.sources.2");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.sources.2.filepath_column"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("'filepath'"), std::string::npos) << e.what();
  }
  write_file(dir / "q.tsv", "filepath\ttitle\na.jpg\t\"never closed\n");
  cfg.path = (dir / "q.tsv").string();
  EXPECT_THROW(detail::make_manifest_source(cfg, "data.sources.2"), DataError);
  cfg.text = "label";
  EXPECT_THROW(detail::make_manifest_source(cfg, "data.sources.2"), ConfigError);
}

TEST(FolderSourceTest, ClassesFromSortedFoldersAndNamesFile) {
  TempDir dir;
  write_file(dir / "train/n02/x.jpg", "x");
  write_file(dir / "train/n01/a.JPEG", "a");
  write_file(dir / "train/n01/b.png", "b");
  write_file(dir / "train/n01/notes.txt", "not an image");
  write_file(dir / "train/n01/._a.JPEG", "macOS fork");
  write_file(dir / "train/.cache/z.jpg", "hidden folder");
  write_file(dir / "names.tsv", "n02\tgoldfish, Carassius auratus\nn01\ttench, Tinca tinca\nn03\tunused\n");
  SourceConfig cfg;
  cfg.type = "folder";
  cfg.text = "label";
  cfg.path = (dir / "train").string();
  cfg.class_names = (dir / "names.tsv").string();
  const ReadAll r = read_all(*detail::make_folder_source(cfg, "data.sources.0"));
  ASSERT_EQ(r.samples.size(), 3u);
  const RawSample* a = find_key(r, "n01/a.JPEG");
  const RawSample* x = find_key(r, "n02/x.jpg");
  ASSERT_TRUE(a && x && find_key(r, "n01/b.png"));
  EXPECT_EQ(a->label_ids, std::vector<int64_t>{0});
  EXPECT_EQ(a->labels, (std::vector<std::string>{"tench", "Tinca tinca"}));
  EXPECT_EQ(x->label_ids, std::vector<int64_t>{1});
  EXPECT_EQ(x->labels, (std::vector<std::string>{"goldfish", "Carassius auratus"}));
  EXPECT_EQ(x->image_bytes, bytes_of("x"));
  const auto names = source_class_names(*detail::make_folder_source(cfg, "data.sources.0"));
  EXPECT_EQ(names, (std::vector<std::vector<std::string>>{{"tench", "Tinca tinca"},
                                                           {"goldfish", "Carassius auratus"}}));

  // ImageNet's LOC_synset_mapping.txt layout: "<id> <names>".
  write_file(dir / "loc.txt", "n01 tench, Tinca tinca\nn02 goldfish\n");
  cfg.class_names = (dir / "loc.txt").string();
  const ReadAll loc = read_all(*detail::make_folder_source(cfg, "data.sources.0"));
  EXPECT_EQ(find_key(loc, "n02/x.jpg")->labels, std::vector<std::string>{"goldfish"});

  // One name per line, in sorted-id order.
  write_file(dir / "plain.txt", "tench\ngold fish\n");
  cfg.class_names = (dir / "plain.txt").string();
  const ReadAll plain = read_all(*detail::make_folder_source(cfg, "data.sources.0"));
  EXPECT_EQ(find_key(plain, "n02/x.jpg")->labels, std::vector<std::string>{"gold fish"});
  EXPECT_EQ(find_key(plain, "n01/b.png")->labels, std::vector<std::string>{"tench"});

  // No names file: the folder name is the label.
  cfg.class_names.clear();
  const ReadAll bare = read_all(*detail::make_folder_source(cfg, "data.sources.0"));
  EXPECT_EQ(find_key(bare, "n02/x.jpg")->labels, std::vector<std::string>{"n02"});
}

TEST(FolderSourceTest, ClassMissingFromNamesFileIsNamed) {
  TempDir dir;
  write_file(dir / "train/n01/a.jpg", "a");
  write_file(dir / "train/n02/b.jpg", "b");
  write_file(dir / "names.tsv", "n01\ttench\n");
  SourceConfig cfg;
  cfg.type = "folder";
  cfg.text = "label";
  cfg.path = (dir / "train").string();
  cfg.class_names = (dir / "names.tsv").string();
  try {
    detail::make_folder_source(cfg, "data.sources.3");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'n02'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data.sources.3.class_names"), std::string::npos);
  }
  write_file(dir / "three.txt", "a\nb\nc\n");
  cfg.class_names = (dir / "three.txt").string();
  EXPECT_THROW(detail::make_folder_source(cfg, "data.sources.3"), ConfigError);
  cfg.class_names.clear();
  cfg.text = "caption";
  EXPECT_THROW(detail::make_folder_source(cfg, "data.sources.3"), ConfigError);
}

TEST(CocoSourceTest, GroupsCaptionsPerImage) {
  TempDir dir;
  write_file(dir / "train2017/1.jpg", "one");
  write_file(dir / "train2017/2.jpg", "two");
  write_file(dir / "train2017/3.jpg", "three");
  write_file(dir / "annotations/captions_train2017.json", R"({
    "info": {}, "images": [{"id": 10, "file_name": "1.jpg", "height": 1},
                           {"id": 30, "file_name": "3.jpg"}, {"id": 20, "file_name": "2.jpg"}],
    "annotations": [{"id": 1, "image_id": 20, "caption": "B first"},
                    {"id": 2, "image_id": 10, "caption": "A first"},
                    {"id": 3, "image_id": 20, "caption": "B second "},
                    {"id": 4, "image_id": 10, "caption": "  "}]})");
  SourceConfig cfg;
  cfg.type = "coco";
  cfg.path = (dir / "annotations/captions_train2017.json").string();
  cfg.image_root = (dir / "train2017").string();
  const ReadAll r = read_all(*detail::make_coco_source(cfg, "data.sources.0"));
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(find_key(r, "1.jpg")->captions, std::vector<std::string>{"A first"});
  EXPECT_EQ(find_key(r, "2.jpg")->captions, (std::vector<std::string>{"B first", "B second"}));
  EXPECT_EQ(find_key(r, "2.jpg")->image_bytes, bytes_of("two"));
  ASSERT_EQ(r.skips.size(), 1u);
  EXPECT_EQ(r.skips[0].reason, SkipReason::empty_text);
  EXPECT_EQ(r.skips[0].key, "3.jpg");

  cfg.split = "train";
  EXPECT_THROW(detail::make_coco_source(cfg, "data.sources.0"), ConfigError);
}

TEST(KarpathySourceTest, FiltersSplitsAndJoinsFilepath) {
  TempDir dir;
  for (const char* f : {"train2014/a.jpg", "val2014/b.jpg", "val2014/c.jpg", "val2014/d.jpg"}) {
    write_file(dir / f, f);
  }
  auto sent = [](const char* s) { return std::string(R"({"raw": ")") + s + R"(", "tokens": []})"; };
  write_file(dir / "dataset_coco.json",
             std::string(R"({"dataset": "coco", "images": [)") +
                 R"({"filepath": "train2014", "filename": "a.jpg", "split": "train", "sentences": [)" +
                 sent("a one") + "," + sent("a two") + "]}," +
                 R"({"filepath": "val2014", "filename": "b.jpg", "split": "restval", "sentences": [)" +
                 sent("b one") + "]}," +
                 R"({"filepath": "val2014", "filename": "c.jpg", "split": "val", "sentences": [)" +
                 sent("c one") + "]}," +
                 R"({"filepath": "val2014", "filename": "d.jpg", "split": "test", "sentences": [)" +
                 sent("d one") + "]}]}");
  SourceConfig cfg;
  cfg.type = "karpathy";
  cfg.path = (dir / "dataset_coco.json").string();
  cfg.split = "train,restval";
  const ReadAll train = read_all(*detail::make_karpathy_source(cfg, "data.sources.0"));
  ASSERT_EQ(train.samples.size(), 2u);
  EXPECT_EQ(find_key(train, "train2014/a.jpg")->captions,
            (std::vector<std::string>{"a one", "a two"}));
  EXPECT_EQ(find_key(train, "val2014/b.jpg")->image_bytes, bytes_of("val2014/b.jpg"));
  cfg.split = "test";
  const ReadAll test = read_all(*detail::make_karpathy_source(cfg, "data.sources.0"));
  ASSERT_EQ(test.samples.size(), 1u);
  EXPECT_EQ(test.samples[0].key, "val2014/d.jpg");
  cfg.split = "";
  EXPECT_EQ(read_all(*detail::make_karpathy_source(cfg, "data.sources.0")).samples.size(), 4u);
  cfg.split = "training";
  try {
    detail::make_karpathy_source(cfg, "data.sources.0");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("restval, test, train, val"), std::string::npos)
        << e.what();
  }
}

// IDX writing (big-endian dims), optionally gzip-compressed through libarchive.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  s.append(data.begin(), data.end());
  return s;
}

std::string gzip(const std::string& raw) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  std::vector<char> buf(raw.size() + 4096);
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(raw.size()));
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
  EXPECT_EQ(archive_write_data(a, raw.data(), raw.size()), static_cast<la_ssize_t>(raw.size()));
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

TEST(IdxSourceTest, ReadsPlainAndGzipFilesAsRgb) {
  TempDir dir;
  const int n = 5, h = 2, w = 3;
  std::vector<uint8_t> pixels;
  for (int i = 0; i < n * h * w; ++i) pixels.push_back(static_cast<uint8_t>(i * 7 % 251));
  const std::vector<uint8_t> labels{2, 0, 1, 2, 1};
  write_file(dir / "images.idx", idx_bytes({n, h, w}, pixels));
  write_file(dir / "labels.idx", idx_bytes({n}, labels));
  write_file(dir / "images.idx.gz", gzip(idx_bytes({n, h, w}, pixels)));
  write_file(dir / "labels.idx.gz", gzip(idx_bytes({n}, labels)));
  write_file(dir / "names.txt", "zero\none\ntwo, 2\n");
  for (const std::string ext : {"", ".gz"}) {
    SCOPED_TRACE("extension '" + ext + "'");
    SourceConfig cfg;
    cfg.type = "idx";
    cfg.text = "label";
    cfg.path = (dir / ("images.idx" + ext)).string();
    cfg.labels_path = (dir / ("labels.idx" + ext)).string();
    cfg.class_names = (dir / "names.txt").string();
    const ReadAll r = read_all(*detail::make_idx_source(cfg, "data.sources.0"));
    ASSERT_EQ(r.samples.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const RawSample* s = find_key(r, "images.idx" + ext + "#" + std::to_string(i));
      ASSERT_TRUE(s) << i;
      EXPECT_EQ(s->height, h);
      EXPECT_EQ(s->width, w);
      EXPECT_EQ(s->label_ids, std::vector<int64_t>{labels[static_cast<size_t>(i)]});
      ASSERT_EQ(s->pixels.size(), static_cast<size_t>(h * w * 3));
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          for (int c = 0; c < 3; ++c) {
            EXPECT_EQ(s->pixels[static_cast<size_t>((y * w + x) * 3 + c)],
                      pixels[static_cast<size_t>(i * h * w + y * w + x)]);
          }
        }
      }
    }
    EXPECT_EQ(find_key(r, "images.idx" + ext + "#0")->labels, (std::vector<std::string>{"two", "2"}));
    EXPECT_EQ(find_key(r, "images.idx" + ext + "#1")->labels, std::vector<std::string>{"zero"});
  }
}

TEST(IdxSourceTest, MismatchedOrTruncatedFilesAreErrors) {
  TempDir dir;
  write_file(dir / "images.idx", idx_bytes({3, 2, 2}, std::vector<uint8_t>(12, 1)));
  write_file(dir / "short.idx", idx_bytes({3, 2, 2}, std::vector<uint8_t>(11, 1)));
  write_file(dir / "labels4.idx", idx_bytes({4}, {0, 0, 0, 0}));
  write_file(dir / "names.txt", "only\n");
  SourceConfig cfg;
  cfg.type = "idx";
  cfg.text = "label";
  cfg.path = (dir / "images.idx").string();
  cfg.labels_path = (dir / "labels4.idx").string();
  cfg.class_names = (dir / "names.txt").string();
  EXPECT_THROW(detail::make_idx_source(cfg, "data.sources.0"), IoError);
  cfg.path = (dir / "short.idx").string();
  EXPECT_THROW(detail::make_idx_source(cfg, "data.sources.0"), IoError);
  cfg.class_names.clear();
  EXPECT_THROW(detail::make_idx_source(cfg, "data.sources.0"), ConfigError);
}

// Debian's dataset-fashion-mnist, when installed: the official file layout and sizes, and
// the first training label (9, "Ankle boot"; read from the raw file with Python's gzip).
TEST(IdxSourceTest, ReadsDebianFashionMnistWhenInstalled) {
  const std::filesystem::path root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  SourceConfig cfg;
  cfg.type = "idx";
  cfg.text = "label";
  cfg.path = (root / "train-images-idx3-ubyte.gz").string();
  cfg.labels_path = (root / "train-labels-idx1-ubyte.gz").string();
  cfg.class_names = (coca::testing::source_dir() / "configs/data/fashion_mnist_classes.txt").string();
  auto source = detail::make_idx_source(cfg, "data.sources.0");
  auto* rows = dynamic_cast<const detail::RowSource*>(source.get());
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->rows(), 60000);
  RawSample s;
  ASSERT_TRUE(rows->read_row(0, s, {}, "test"));
  EXPECT_EQ(s.height, 28);
  EXPECT_EQ(s.width, 28);
  EXPECT_EQ(s.label_ids, std::vector<int64_t>{9});
  EXPECT_EQ(s.labels, std::vector<std::string>{"Ankle boot"});
  const auto names = source_class_names(*source);
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], std::vector<std::string>{"T-shirt/top"});
}

TEST(IdxSourceTest, FashionMnistConfigFragmentBuildsTheSource) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  config::RunConfig cfg;
  config::apply_file(cfg, (coca::testing::source_dir() / "configs/data/fashion_mnist.yaml").string());
  ASSERT_EQ(cfg.data.sources.size(), 1u);
  auto source = detail::make_idx_source(cfg.data.sources[0], "data.sources.0");
  // 60000 rows in shards of 512.
  EXPECT_EQ(source->shards().size(), 118u);
  EXPECT_EQ(source->shards().back().samples, 60000 - 117 * 512);
}

}  // namespace
}  // namespace coca::data
