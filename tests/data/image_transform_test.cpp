// Image decoding and transforms. The eval transform is checked against torchvision + PIL
// outputs written by tools/make_golden_images.py (tests/data/golden/images).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "coca/common/error.h"
#include "coca/data/image_transform.h"
#include "test_utils.h"

namespace coca::data {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << p;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

Image random_image(int64_t h, int64_t w, uint32_t seed) {
  std::mt19937 rng(seed);
  Image img;
  img.height = h;
  img.width = w;
  img.rgb.resize(h * w * 3);
  for (auto& v : img.rgb) v = static_cast<uint8_t>(rng() & 0xFF);
  return img;
}

int max_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.width, b.width);
  if (a.rgb.size() != b.rgb.size()) return 256;
  int m = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) m = std::max(m, std::abs(a.rgb[i] - b.rgb[i]));
  return m;
}

fs::path golden_dir() { return testing::source_dir() / "tests" / "data" / "golden" / "images"; }

TEST(ImageTransformTest, EvalTransformMatchesTorchvisionPil) {
  std::ifstream manifest(golden_dir() / "manifest.txt");
  ASSERT_TRUE(manifest.good()) << "run tools/make_golden_images.py";
  std::string line;
  int checked = 0;
  int worst = 0;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string input, expected;
    int64_t size = 0;
    fields >> input >> size >> expected;
    const Image in = decode_image(read_bytes(golden_dir() / input), input);
    const Image want = decode_image(read_bytes(golden_dir() / expected), expected);
    Image got = in;
    if (size > 0) got = EvalTransform(TransformConfig{}, size).resize_crop(in);
    const int diff = max_abs_diff(got, want);
    // PNG inputs test the resampling port alone: bit-exact. JPEG inputs also go through
    // two JPEG decoders (OpenCV's and PIL's libjpeg), allowed to differ slightly.
    const bool png = input.size() > 4 && input.substr(input.size() - 4) == ".png";
    EXPECT_LE(diff, png ? 0 : 3) << input << " at " << size << ": max |ours - PIL| = " << diff
                                 << "/255";
    worst = std::max(worst, diff);
    ++checked;
  }
  EXPECT_EQ(checked, 18);
  std::cout << "[golden] eval transform vs torchvision+PIL: max abs diff " << worst
            << "/255 over " << checked << " cases\n";
}

TEST(ImageTransformTest, DecodesPngExactlyAndJpegClosely) {
  const Image img = random_image(13, 17, 1);
  const Image png = decode_image(encode_image(img, "png"), "x.png");
  EXPECT_EQ(max_abs_diff(png, img), 0);
  // A smooth image survives JPEG at quality 95 within a few levels.
  Image smooth = img;
  for (int64_t y = 0; y < smooth.height; ++y) {
    for (int64_t x = 0; x < smooth.width; ++x) {
      uint8_t* p = smooth.pixel(y, x);
      p[0] = static_cast<uint8_t>(10 * x);
      p[1] = static_cast<uint8_t>(12 * y);
      p[2] = 128;
    }
  }
  const Image jpg = decode_image(encode_image(smooth, "jpg", 95), "x.jpg");
  EXPECT_EQ(jpg.height, 13);
  EXPECT_EQ(jpg.width, 17);
  EXPECT_LE(max_abs_diff(jpg, smooth), 12);
}

TEST(ImageTransformTest, GrayBecomesThreeEqualChannels) {
  const Image gray = decode_image(read_bytes(golden_dir() / "gray45x70.png"), "gray");
  ASSERT_EQ(gray.height, 45);
  ASSERT_EQ(gray.width, 70);
  for (int64_t i = 0; i < gray.height * gray.width; ++i) {
    ASSERT_EQ(gray.rgb[i * 3], gray.rgb[i * 3 + 1]);
    ASSERT_EQ(gray.rgb[i * 3], gray.rgb[i * 3 + 2]);
  }
}

TEST(ImageTransformTest, FlattenImageCompositesAlphaOntoTheBackground) {
  const fs::path dir = testing::source_dir() / "tests" / "data" / "golden" / "alpha";
  const auto rgba = read_bytes(dir / "rgba_3x2.png");  // pixels: tools/make_golden_alpha.py
  const auto white = flatten_image(rgba, "rgba", 255, 0);
  ASSERT_FALSE(white.empty());
  const Image w = decode_image(white, "white");
  ASSERT_EQ(w.height, 2);
  ASSERT_EQ(w.width, 3);
  // out = (rgb * a + bg * (255 - a)) / 255, rounded: alpha 128 over black on white -> 127.
  const std::vector<uint8_t> want_white{255, 0,   0,   255, 255, 255, 127, 127, 127,
                                        10,  20,  30,  255, 255, 255, 0,   0,   255};
  EXPECT_EQ(w.rgb, want_white);
  const Image b = decode_image(flatten_image(rgba, "rgba", 0, 0), "black");
  const std::vector<uint8_t> want_black{255, 0, 0, 0, 0, 0, 0, 0, 0, 10, 20, 30, 0, 0, 0, 0, 0, 255};
  EXPECT_EQ(b.rgb, want_black);
  // Alpha dropped (-1) and no size limit: nothing to change.
  EXPECT_TRUE(flatten_image(rgba, "rgba", -1, 0).empty());
}

TEST(ImageTransformTest, FlattenImageShrinksTheLongerSide) {
  const fs::path dir = testing::source_dir() / "tests" / "data" / "golden" / "alpha";
  const auto la = read_bytes(dir / "la_40x20.png");  // grey 100, opaque, 40 wide
  const Image small = decode_image(flatten_image(la, "la", 255, 10), "small");
  EXPECT_EQ(small.width, 10);
  EXPECT_EQ(small.height, 5);
  for (uint8_t v : small.rgb) ASSERT_EQ(v, 100);
  EXPECT_FALSE(flatten_image(la, "la", 255, 0).empty());  // has an alpha channel
  EXPECT_TRUE(flatten_image(la, "la", -1, 40).empty());   // fits, alpha ignored
  EXPECT_THROW(flatten_image({1, 2, 3}, "junk", 255, 0), DataError);
}

TEST(ImageTransformTest, CorruptDataThrowsDataErrorNamingTheSample) {
  RawSample s;
  s.key = "sample-42";
  s.image_name = "shard-0.tar:sample-42.jpg";
  s.image_bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  try {
    sample_image(s);
    FAIL() << "garbage decoded";
  } catch (const DataError& e) {
    EXPECT_EQ(e.sample(), "sample-42");
    EXPECT_NE(std::string(e.what()).find("sample-42"), std::string::npos) << e.what();
  }
  // Truncated JPEG and PNG (libjpeg alone would pad a cut JPEG with grey).
  const Image img = random_image(40, 40, 2);
  for (const char* ext : {"jpg", "png"}) {
    auto bytes = encode_image(img, ext);
    bytes.resize(bytes.size() / 2);
    EXPECT_THROW(decode_image(bytes, ext), DataError) << ext;
  }
  EXPECT_THROW(decode_image({}, "empty"), DataError);
}

TEST(ImageTransformTest, PixelsAreUsedWhenPresent) {
  RawSample s;
  s.key = "k";
  s.height = 2;
  s.width = 3;
  s.pixels.resize(18, 7);
  const Image img = sample_image(s);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.width, 3);
  s.pixels.resize(17);
  EXPECT_THROW(sample_image(s), DataError);
}

TEST(ImageTransformTest, ReducedJpegDecodeKeepsTheShorterSideAboveTheTarget) {
  const Image img = random_image(256, 200, 3);
  const auto jpg = encode_image(img, "jpg");
  EXPECT_EQ(decode_image(jpg, "a", 0).width, 200);
  const Image half = decode_image(jpg, "a", 64);  // 200 / 2 >= 64 but 200 / 4 < 64
  EXPECT_EQ(half.height, 128);
  EXPECT_EQ(half.width, 100);
  const Image eighth = decode_image(jpg, "a", 20);
  EXPECT_EQ(eighth.height, 32);
  EXPECT_EQ(eighth.width, 25);
  // PNGs are never reduced.
  EXPECT_EQ(decode_image(encode_image(img, "png"), "p", 20).width, 200);
}

TEST(ImageTransformTest, ResizeKeepsConstantImagesConstant) {
  Image img = random_image(23, 31, 4);
  for (int64_t i = 0; i < img.height * img.width; ++i) {
    img.rgb[i * 3] = 200;
    img.rgb[i * 3 + 1] = 0;
    img.rgb[i * 3 + 2] = 255;
  }
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{5, 7}, {64, 64}, {23, 90}}) {
    const Image r = resize_bicubic(img, h, w);
    ASSERT_EQ(r.height, h);
    ASSERT_EQ(r.width, w);
    for (int64_t i = 0; i < h * w; ++i) {
      ASSERT_EQ(r.rgb[i * 3], 200);
      ASSERT_EQ(r.rgb[i * 3 + 1], 0);
      ASSERT_EQ(r.rgb[i * 3 + 2], 255);
    }
  }
  EXPECT_EQ(max_abs_diff(resize_bicubic(img, 23, 31), img), 0);
}

TEST(ImageTransformTest, ShorterSideSizeFollowsTorchvision) {
  EXPECT_EQ(shorter_side_size(97, 131, 64), (std::pair<int64_t, int64_t>{64, 86}));
  EXPECT_EQ(shorter_side_size(256, 200, 64), (std::pair<int64_t, int64_t>{81, 64}));
  EXPECT_EQ(shorter_side_size(50, 50, 33), (std::pair<int64_t, int64_t>{33, 33}));
}

TEST(ImageTransformTest, RandomResizedCropStaysInBoundsAndRange) {
  std::set<std::pair<int64_t, int64_t>> origins;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    std::mt19937_64 rng(seed);
    const CropBox b = random_resized_crop_box(100, 150, 0.3, 0.9, 0.75, 4.0 / 3.0, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_GT(b.height, 0);
    ASSERT_GT(b.width, 0);
    ASSERT_LE(b.top + b.height, 100);
    ASSERT_LE(b.left + b.width, 150);
    const double area = static_cast<double>(b.height * b.width) / (100.0 * 150.0);
    EXPECT_GT(area, 0.3 * 0.95);  // w and h are rounded: a few % slack
    EXPECT_LT(area, 0.9 * 1.05);
    const double ratio = static_cast<double>(b.width) / static_cast<double>(b.height);
    EXPECT_GT(ratio, 0.75 * 0.97);
    EXPECT_LT(ratio, 4.0 / 3.0 * 1.03);
    origins.insert({b.top, b.left});
  }
  EXPECT_GT(origins.size(), 100u);  // placement is random
}

TEST(ImageTransformTest, RandomResizedCropFallsBackToACentredCrop) {
  // 10 x 1000 cannot hold a 0.9-area crop of ratio <= 4/3: centred 10 x 13 crop.
  std::mt19937_64 rng(0);
  const CropBox b = random_resized_crop_box(10, 1000, 0.9, 1.0, 0.75, 4.0 / 3.0, rng);
  EXPECT_EQ(b.height, 10);
  EXPECT_EQ(b.width, 13);
  EXPECT_EQ(b.top, 0);
  EXPECT_EQ(b.left, (1000 - 13) / 2);
}

TEST(ImageTransformTest, TrainTransformIsDeterministicPerSeed) {
  RawSample s;
  s.key = "k";
  s.image_bytes = encode_image(random_image(70, 90, 5), "png");
  TransformConfig cfg;
  cfg.scale_min = 0.2;
  cfg.hflip = true;
  const TrainTransform t(cfg, 32);
  const uint64_t seed = sample_seed(1, 2, 3);
  const torch::Tensor a = t(s, seed);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(a.dtype(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(a, t(s, seed)));
  EXPECT_FALSE(torch::equal(a, t(s, sample_seed(1, 2, 4))));
  EXPECT_NE(sample_seed(1, 2, 3), sample_seed(1, 3, 2));
  EXPECT_NE(sample_seed(0, 0, 0), sample_seed(1, 0, 0));
}

TEST(ImageTransformTest, TrainTransformIsCropThenResizeThenNormalise) {
  // torchvision's RandomResizedCrop composed from the separately tested pieces (crop box,
  // crop, Pillow resize, normalisation) must equal the train transform, which resizes the
  // crop box in place. Down- and upscaling, non-square images, several seeds.
  TransformConfig cfg;
  cfg.scale_min = 0.3;
  for (const auto& [h, w, size] : std::vector<std::array<int64_t, 3>>{
           {70, 90, 32}, {256, 256, 224}, {40, 300, 64}, {301, 77, 48}}) {
    const Image img = random_image(h, w, static_cast<uint32_t>(h * w));
    RawSample s;
    s.key = "k";
    s.image_bytes = encode_image(img, "png");
    const TrainTransform t(cfg, size);
    for (uint64_t seed = 0; seed < 4; ++seed) {
      std::mt19937_64 rng(seed);
      const CropBox box = random_resized_crop_box(h, w, cfg.scale_min, cfg.scale_max,
                                                  cfg.ratio_min, cfg.ratio_max, rng);
      const Image want =
          resize_bicubic(crop(img, box.top, box.left, box.height, box.width), size, size);
      EXPECT_EQ(max_abs_diff(t.augment(img, seed), want), 0) << h << "x" << w << " seed " << seed;
      EXPECT_TRUE(torch::equal(t(s, seed), to_normalized_tensor(want, cfg.mean, cfg.std)))
          << h << "x" << w << " seed " << seed;
    }
  }
}

TEST(ImageTransformTest, HflipMirrorsAndTrainFlipsHalfTheTime) {
  const Image img = random_image(5, 4, 6);
  const Image f = hflip(img);
  for (int64_t y = 0; y < 5; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(f.pixel(y, x)[c], img.pixel(y, 3 - x)[c]);
    }
  }
  EXPECT_EQ(max_abs_diff(hflip(f), img), 0);

  const Image big = random_image(40, 40, 7);
  TransformConfig plain;
  TransformConfig flipping = plain;
  flipping.hflip = true;
  const TrainTransform t0(plain, 16), t1(flipping, 16);
  int flipped = 0, kept = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const Image a = t0.augment(big, seed);
    const Image b = t1.augment(big, seed);
    if (max_abs_diff(a, b) == 0) {
      ++kept;
    } else {
      ASSERT_EQ(max_abs_diff(hflip(a), b), 0) << "seed " << seed;
      ++flipped;
    }
  }
  EXPECT_GT(flipped, 8);
  EXPECT_GT(kept, 8);
}

TEST(ImageTransformTest, NormalisationUsesMeanAndStd) {
  Image img;
  img.height = 1;
  img.width = 2;
  img.rgb = {255, 0, 51, 0, 255, 102};
  const std::vector<double> mean{0.5, 0.25, 0.0}, std{0.5, 0.25, 0.2};
  const torch::Tensor t = to_normalized_tensor(img, mean, std);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 1, 2}));
  // (x / 255 - mean) / std by hand.
  const float want[3][2] = {{1.0f, -1.0f}, {-1.0f, 3.0f}, {1.0f, 2.0f}};
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 2; ++x) EXPECT_NEAR(t[c][0][x].item<float>(), want[c][x], 1e-5);
  }
  EXPECT_THROW(to_normalized_tensor(img, {0.5}, std), std::invalid_argument);
}

TEST(ImageTransformTest, EvalTransformOutputsNormalisedSquare) {
  RawSample s;
  s.key = "k";
  s.image_bytes = encode_image(random_image(30, 50, 8), "png");
  const EvalTransform t(TransformConfig{}, 24);
  const torch::Tensor out = t(s);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 24, 24}));
  // CLIP's mean/std: 0 maps to -mean/std, 255 to (1 - mean)/std.
  EXPECT_GE(out[0].min().item<float>(), -0.48145466f / 0.26862954f - 1e-4f);
  EXPECT_LE(out[0].max().item<float>(), (1 - 0.48145466f) / 0.26862954f + 1e-4f);
}

}  // namespace
}  // namespace coca::data
