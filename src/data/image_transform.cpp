#include "coca/data/image_transform.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "coca/common/error.h"
#include "data/detail/random.h"

namespace coca::data {
namespace {

using detail::mix64;
using detail::uniform;
using detail::uniform_int;

// ---------------------------------------------------------------------------------------
// JPEG header sniffing (for reduced-size decoding and truncation checks)

bool is_jpeg(const std::vector<uint8_t>& b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

// Height and width from the first SOFn segment, or {0, 0} when not found.
std::pair<int64_t, int64_t> jpeg_size(const std::vector<uint8_t>& b) {
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return {0, 0};
    const uint8_t marker = b[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) {  // no length field
      i += 2;
      continue;
    }
    const size_t length = (size_t{b[i + 2]} << 8) | b[i + 3];
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                     marker != 0xCC;
    if (sof) {
      if (i + 9 > b.size()) return {0, 0};
      return {(int64_t{b[i + 5]} << 8) | b[i + 6], (int64_t{b[i + 7]} << 8) | b[i + 8]};
    }
    if (marker == 0xDA) return {0, 0};  // start of scan before any frame header
    i += 2 + length;
  }
  return {0, 0};
}

// libjpeg decodes a JPEG that stops early into a grey-padded image with only a warning;
// PIL refuses it. A complete JPEG has an end-of-image marker after its last scan header
// (0xFF 0xD9 never occurs inside entropy-coded data, which stuffs every 0xFF).
bool jpeg_is_complete(const std::vector<uint8_t>& b) {
  size_t last_sos = 0;
  for (size_t i = 2; i + 1 < b.size(); ++i) {
    if (b[i] == 0xFF && b[i + 1] == 0xDA) last_sos = i;
  }
  if (last_sos == 0) return false;
  for (size_t i = b.size() - 1; i > last_sos + 1; --i) {
    if (b[i - 1] == 0xFF && b[i] == 0xD9) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Pillow's resampling (libImaging/Resample.c), 8 bits per channel.

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}
constexpr double kBicubicSupport = 2.0;

// Fixed-point weights of every output position along one axis: for output i, the
// inputs first[i] .. first[i] + count[i] - 1 with weights w[i * ksize + k].
struct Coeffs {
  int64_t ksize = 0;
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<int32_t> w;
};

Coeffs precompute_coeffs(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filterscale;
  Coeffs c;
  c.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.w.assign(out_size * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow truncates (value + 0.5) towards zero with an int cast; keep that.
    int64_t xmin = static_cast<int64_t>(static_cast<int>(center - support + 0.5));
    xmin = std::max<int64_t>(xmin, 0);
    int64_t xmax = static_cast<int64_t>(static_cast<int>(center + support + 0.5));
    xmax = std::min<int64_t>(xmax, in_size) - xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = bicubic_filter((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[x] / ww : k[x];
      w *= static_cast<double>(1 << kPrecisionBits);
      c.w[xx * c.ksize + x] = static_cast<int32_t>(w < 0 ? w - 0.5 : w + 0.5);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup table
  return static_cast<uint8_t>(std::clamp<int32_t>(v, 0, 255));
}

// The pixel loops below are compiled twice, for AVX2 and for the x86-64 baseline (SSE2, which
// lacks a packed 32-bit multiply), and picked at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define COCA_PIXEL_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define COCA_PIXEL_KERNEL
#endif

// One output row of a vertical pass: dst[i] = clip8(half + sum_k src_k[i] * w[k]) for i < n,
// src_k = first + k * stride. `acc` holds n int32. Integer arithmetic, so the result does not
// depend on the order of the sums (vectorised across i).
COCA_PIXEL_KERNEL
void weighted_row(const uint8_t* first, int64_t stride, const int32_t* w, int64_t count,
                  int64_t n, int32_t* acc, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) acc[i] = 1 << (kPrecisionBits - 1);
  for (int64_t k = 0; k < count; ++k) {
    const uint8_t* src = first + k * stride;
    const int32_t wk = w[k];
    for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<int32_t>(src[i]) * wk;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = clip8(acc[i]);
}

// Interleaved RGB -> three planes: plane c = rgb[., c] * a[c] + b[c].
COCA_PIXEL_KERNEL
void normalize_to_planes(const uint8_t* rgb, int64_t pixels, const float* a, const float* b,
                         float* dst) {
  float* d0 = dst;
  float* d1 = dst + pixels;
  float* d2 = dst + 2 * pixels;
  const float a0 = a[0], a1 = a[1], a2 = a[2], b0 = b[0], b1 = b[1], b2 = b[2];
  for (int64_t i = 0; i < pixels; ++i) {
    d0[i] = static_cast<float>(rgb[i * 3]) * a0 + b0;
    d1[i] = static_cast<float>(rgb[i * 3 + 1]) * a1 + b1;
    d2[i] = static_cast<float>(rgb[i * 3 + 2]) * a2 + b2;
  }
}

// Pillow's vertical pass over rows [top, top + height) and columns [left, left + width) of
// `in`, to out_height rows.
Image resample_vertical(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width,
                        int64_t out_height) {
  const Coeffs c = precompute_coeffs(height, out_height);
  Image out;
  out.height = out_height;
  out.width = width;
  out.rgb.resize(out.height * out.width * 3);
  const int64_t n = width * 3;
  std::vector<int32_t> acc(n);
  for (int64_t yy = 0; yy < out_height; ++yy) {
    weighted_row(in.pixel(top + c.first[yy], left), in.width * 3, &c.w[yy * c.ksize],
                 c.count[yy], n, acc.data(), out.pixel(yy, 0));
  }
  return out;
}

// The transpose of rows [top, top + height) x columns [left, left + width) of `in`
// (pixel (y, x) -> (x, y)).
Image transpose(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width) {
  Image out;
  out.height = width;
  out.width = height;
  out.rgb.resize(out.height * out.width * 3);
  constexpr int64_t kBlock = 32;  // tiles that stay in L1
  for (int64_t y0 = 0; y0 < height; y0 += kBlock) {
    for (int64_t x0 = 0; x0 < width; x0 += kBlock) {
      const int64_t y1 = std::min(y0 + kBlock, height);
      const int64_t x1 = std::min(x0 + kBlock, width);
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* src = in.pixel(top + y, left);
        for (int64_t x = x0; x < x1; ++x) {
          uint8_t* dst = out.pixel(x, y);
          dst[0] = src[x * 3];
          dst[1] = src[x * 3 + 1];
          dst[2] = src[x * 3 + 2];
        }
      }
    }
  }
  return out;
}

// Pillow's horizontal pass over a region of `in`, to out_width columns: run as a vertical pass
// over the transposed region (the same integer sums per output pixel, but vectorised).
Image resample_horizontal(const Image& in, int64_t top, int64_t left, int64_t height,
                          int64_t width, int64_t out_width) {
  const Image t = transpose(in, top, left, height, width);
  const Image r = resample_vertical(t, 0, 0, t.height, t.width, out_width);
  return transpose(r, 0, 0, r.height, r.width);
}

// Pillow's resize (horizontal pass first) of a region of `image`; a pass whose size does not
// change is skipped, as Pillow does.
Image resize_region(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width,
                    int64_t out_height, int64_t out_width) {
  if (out_width != width) {
    const Image tmp = resample_horizontal(image, top, left, height, width, out_width);
    if (out_height == height) return tmp;
    return resample_vertical(tmp, 0, 0, tmp.height, tmp.width, out_height);
  }
  if (out_height != height) return resample_vertical(image, top, left, height, width, out_height);
  Image out;
  out.height = height;
  out.width = width;
  out.rgb.resize(height * width * 3);
  for (int64_t y = 0; y < height; ++y) {
    std::memcpy(out.pixel(y, 0), image.pixel(top + y, left), width * 3);
  }
  return out;
}

// Python's round(): half to even (the default floating-point rounding mode).
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

void check_image(const Image& image, const char* who) {
  if (image.height <= 0 || image.width <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.height * image.width * 3)) {
    throw std::invalid_argument(std::string(who) + ": expected a non-empty " +
                                std::to_string(image.height) + "x" + std::to_string(image.width) +
                                " RGB image with " +
                                std::to_string(image.height * image.width * 3) + " bytes, got " +
                                std::to_string(image.rgb.size()));
  }
}

}  // namespace

// -----------------------------------------------------------------------------------------

namespace {

// Decodes `bytes`; errors name the file or member `name` and the sample `key`.
Image decode_impl(const std::vector<uint8_t>& bytes, const std::string& name,
                  const std::string& key, int64_t min_side) {
  if (bytes.empty()) throw DataError(name, key, "empty image data");
  int flags = cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION;  // PIL ignores EXIF too
  const bool jpeg = is_jpeg(bytes);
  if (jpeg && !jpeg_is_complete(bytes)) {
    throw DataError(name, key, "truncated or corrupt JPEG (no end-of-image marker after the scan)");
  }
  if (jpeg && min_side > 0) {
    const auto [h, w] = jpeg_size(bytes);
    const int64_t shorter = std::min(h, w);
    if (shorter >= 8 * min_side) {
      flags = cv::IMREAD_REDUCED_COLOR_8 | cv::IMREAD_IGNORE_ORIENTATION;
    } else if (shorter >= 4 * min_side) {
      flags = cv::IMREAD_REDUCED_COLOR_4 | cv::IMREAD_IGNORE_ORIENTATION;
    } else if (shorter >= 2 * min_side) {
      flags = cv::IMREAD_REDUCED_COLOR_2 | cv::IMREAD_IGNORE_ORIENTATION;
    }
  }
  cv::Mat bgr;
  try {
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U,
                      const_cast<uint8_t*>(bytes.data()));
    bgr = cv::imdecode(buf, flags);
  } catch (const cv::Exception& e) {
    throw DataError(name, key, std::string("cannot decode image: ") + e.what());
  }
  if (bgr.empty()) {
    throw DataError(name, key, "cannot decode image (" + std::to_string(bytes.size()) +
                                  " bytes; corrupt or not jpg/png/webp/bmp)");
  }
  if (bgr.depth() != CV_8U || bgr.channels() != 3) {
    throw DataError(name, key, "decoded to an unexpected pixel format (type " +
                                  std::to_string(bgr.type()) + ")");
  }
  Image out;
  out.height = bgr.rows;
  out.width = bgr.cols;
  out.rgb.resize(out.height * out.width * 3);
  cv::Mat rgb(bgr.rows, bgr.cols, CV_8UC3, out.rgb.data());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return out;
}

}  // namespace

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                   int64_t min_side) {
  return decode_impl(bytes, name, "", min_side);
}

Image sample_image(const RawSample& sample, int64_t min_side) {
  const std::string& where = sample.image_name.empty() ? sample.key : sample.image_name;
  if (!sample.pixels.empty()) {
    if (sample.height <= 0 || sample.width <= 0 ||
        sample.pixels.size() != static_cast<size_t>(sample.height * sample.width * 3)) {
      throw DataError(where, sample.key,
                      "pixels hold " + std::to_string(sample.pixels.size()) + " bytes, expected " +
                          std::to_string(sample.height) + "x" + std::to_string(sample.width) +
                          "x3");
    }
    Image out;
    out.height = sample.height;
    out.width = sample.width;
    out.rgb = sample.pixels;
    return out;
  }
  return decode_impl(sample.image_bytes, where, sample.key, min_side);
}

std::vector<uint8_t> flatten_image(const std::vector<uint8_t>& bytes, const std::string& name,
                                   int background, int64_t max_side) {
  if (background > 255) {
    throw std::invalid_argument("flatten_image: background must be -1..255, got " +
                                std::to_string(background));
  }
  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw DataError(name, "", std::string("cannot decode image: ") + e.what());
  }
  if (m.empty()) throw DataError(name, "", "cannot decode image (corrupt or not jpg/png/webp/bmp)");
  const bool alpha = background >= 0 && (m.channels() == 4 || m.channels() == 2);
  const bool large = max_side > 0 && std::max(m.rows, m.cols) > max_side;
  if (!alpha && !large) return {};
  if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
  if (m.depth() != CV_8U) {
    throw DataError(name, "", "unexpected pixel depth (type " + std::to_string(m.type()) + ")");
  }
  Image img;
  img.height = m.rows;
  img.width = m.cols;
  img.rgb.resize(static_cast<size_t>(img.height * img.width * 3));
  const int ch = m.channels();
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols; ++x) {
      const uint8_t* px = row + static_cast<ptrdiff_t>(x) * ch;
      // OpenCV's channel order: gray, gray+alpha, BGR or BGRA.
      uint8_t rgb[3];
      if (ch <= 2) {
        rgb[0] = rgb[1] = rgb[2] = px[0];
      } else {
        rgb[0] = px[2];
        rgb[1] = px[1];
        rgb[2] = px[0];
      }
      uint8_t* out = img.rgb.data() + (static_cast<size_t>(y) * m.cols + x) * 3;
      if (alpha) {
        const int a = px[ch - 1];
        for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>((rgb[c] * a + background * (255 - a) + 127) / 255);
      } else {
        std::memcpy(out, rgb, 3);
      }
    }
  }
  if (large) {
    const double f = static_cast<double>(max_side) / std::max(img.height, img.width);
    img = resize_bicubic(img, std::max<int64_t>(1, std::lround(img.height * f)),
                         std::max<int64_t>(1, std::lround(img.width * f)));
  }
  return encode_image(img, "png");
}

std::vector<uint8_t> encode_image(const Image& image, const std::string& ext, int quality) {
  check_image(image, "encode_image");
  cv::Mat bgr;
  const cv::Mat rgb(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
                    const_cast<uint8_t*>(image.rgb.data()));
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<int> params;
  std::string cv_ext;
  if (ext == "png") {
    cv_ext = ".png";
    params = {cv::IMWRITE_PNG_COMPRESSION, 3};
  } else if (ext == "jpg" || ext == "jpeg") {
    cv_ext = ".jpg";
    params = {cv::IMWRITE_JPEG_QUALITY, std::clamp(quality, 0, 100)};
  } else {
    throw std::invalid_argument("encode_image: format must be png or jpg, got '" + ext + "'");
  }
  std::vector<uint8_t> out;
  if (!cv::imencode(cv_ext, bgr, out, params)) {
    throw std::runtime_error("encode_image: OpenCV could not encode " + ext);
  }
  return out;
}

Image resize_bicubic(const Image& image, int64_t out_height, int64_t out_width) {
  check_image(image, "resize_bicubic");
  if (out_height <= 0 || out_width <= 0) {
    throw std::invalid_argument("resize_bicubic: output size must be positive, got " +
                                std::to_string(out_height) + "x" + std::to_string(out_width));
  }
  // Horizontal pass first, then vertical, each rounding to uint8 (as Pillow).
  return resize_region(image, 0, 0, image.height, image.width, out_height, out_width);
}

Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_image(image, "crop");
  if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > image.height ||
      left + width > image.width) {
    throw std::invalid_argument("crop: box (top " + std::to_string(top) + ", left " +
                                std::to_string(left) + ", " + std::to_string(height) + "x" +
                                std::to_string(width) + ") outside the " +
                                std::to_string(image.height) + "x" +
                                std::to_string(image.width) + " image");
  }
  Image out;
  out.height = height;
  out.width = width;
  out.rgb.resize(height * width * 3);
  for (int64_t y = 0; y < height; ++y) {
    std::memcpy(out.pixel(y, 0), image.pixel(top + y, left), width * 3);
  }
  return out;
}

Image hflip(const Image& image) {
  check_image(image, "hflip");
  Image out = image;
  for (int64_t y = 0; y < image.height; ++y) {
    for (int64_t x = 0; x < image.width; ++x) {
      std::memcpy(out.pixel(y, x), image.pixel(y, image.width - 1 - x), 3);
    }
  }
  return out;
}

torch::Tensor to_normalized_tensor(const Image& image, const std::vector<double>& mean,
                                   const std::vector<double>& std) {
  check_image(image, "to_normalized_tensor");
  if (mean.size() != 3 || std.size() != 3) {
    throw std::invalid_argument("to_normalized_tensor: mean and std need 3 values, got " +
                                std::to_string(mean.size()) + " and " +
                                std::to_string(std.size()));
  }
  auto out = torch::empty({3, image.height, image.width}, torch::kFloat32);
  // (x / 255 - mean) / std as one multiply and one add per value.
  float a[3], b[3];
  for (int c = 0; c < 3; ++c) {
    a[c] = static_cast<float>(1.0 / (255.0 * std[c]));
    b[c] = static_cast<float>(-mean[c] / std[c]);
  }
  normalize_to_planes(image.rgb.data(), image.height * image.width, a, b, out.data_ptr<float>());
  return out;
}

CropBox random_resized_crop_box(int64_t height, int64_t width, double scale_min, double scale_max,
                                double ratio_min, double ratio_max, std::mt19937_64& rng) {
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument("random_resized_crop_box: empty image " + std::to_string(height) +
                                "x" + std::to_string(width));
  }
  const double area = static_cast<double>(height * width);
  const double log_r0 = std::log(ratio_min);
  const double log_r1 = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, scale_min, scale_max);
    const double aspect = std::exp(uniform(rng, log_r0, log_r1));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = uniform_int(rng, height - h + 1);
      box.left = uniform_int(rng, width - w + 1);
      return box;
    }
  }
  // Fallback: centred crop with the aspect ratio clamped to the range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  CropBox box;
  const double rmin = std::min(ratio_min, ratio_max);
  const double rmax = std::max(ratio_min, ratio_max);
  if (in_ratio < rmin) {
    box.width = width;
    box.height = std::max<int64_t>(1, round_half_even(static_cast<double>(width) / rmin));
  } else if (in_ratio > rmax) {
    box.height = height;
    box.width = std::max<int64_t>(1, round_half_even(static_cast<double>(height) * rmax));
  } else {
    box.width = width;
    box.height = height;
  }
  box.height = std::min(box.height, height);
  box.width = std::min(box.width, width);
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t position) {
  uint64_t h = mix64(seed);
  h = mix64(h ^ static_cast<uint64_t>(epoch));
  return mix64(h ^ static_cast<uint64_t>(position));
}

std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size) {
  if (height <= 0 || width <= 0 || size <= 0) {
    throw std::invalid_argument("shorter_side_size: sizes must be positive");
  }
  if (width <= height) {
    return {static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(height) /
                                 static_cast<double>(width)),
            size};
  }
  return {size, static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(width) /
                                     static_cast<double>(height))};
}

// -----------------------------------------------------------------------------------------

namespace {

void check_transform_config(const TransformConfig& cfg, int64_t image_size, const char* who) {
  if (image_size <= 0) {
    throw std::invalid_argument(std::string(who) + ": image_size must be positive, got " +
                                std::to_string(image_size));
  }
  if (cfg.mean.size() != 3 || cfg.std.size() != 3) {
    throw ConfigError(std::string("data.") + who + ".mean/std need 3 values each, got " +
                      std::to_string(cfg.mean.size()) + " and " + std::to_string(cfg.std.size()));
  }
  for (double s : cfg.std) {
    if (!(s > 0)) throw ConfigError(std::string("data.") + who + ".std values must be > 0");
  }
}

}  // namespace

TrainTransform::TrainTransform(const TransformConfig& cfg, int64_t image_size)
    : cfg_(cfg), size_(image_size) {
  check_transform_config(cfg_, size_, "train_transform");
  if (!(cfg_.scale_min > 0 && cfg_.scale_min <= cfg_.scale_max)) {
    throw ConfigError("data.train_transform.scale_min (" + std::to_string(cfg_.scale_min) +
                      ") must be > 0 and <= scale_max (" + std::to_string(cfg_.scale_max) + ")");
  }
  if (!(cfg_.ratio_min > 0 && cfg_.ratio_min <= cfg_.ratio_max)) {
    throw ConfigError("data.train_transform.ratio_min (" + std::to_string(cfg_.ratio_min) +
                      ") must be > 0 and <= ratio_max (" + std::to_string(cfg_.ratio_max) + ")");
  }
}

Image TrainTransform::augment(const Image& image, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  const CropBox box = random_resized_crop_box(image.height, image.width, cfg_.scale_min,
                                              cfg_.scale_max, cfg_.ratio_min, cfg_.ratio_max, rng);
  check_image(image, "TrainTransform");
  // Resizes the crop box in place (no copy of the crop).
  Image out = resize_region(image, box.top, box.left, box.height, box.width, size_, size_);
  if (cfg_.hflip && (rng() >> 63) != 0) out = hflip(out);
  return out;
}

torch::Tensor TrainTransform::operator()(const RawSample& sample, uint64_t seed) const {
  // Reduced decode keeps the expected crop side (sqrt(scale_min) of the image side) >= S.
  const int64_t min_side =
      cfg_.reduced_decode
          ? static_cast<int64_t>(std::ceil(static_cast<double>(size_) / std::sqrt(cfg_.scale_min)))
          : 0;
  return to_normalized_tensor(augment(sample_image(sample, min_side), seed), cfg_.mean, cfg_.std);
}

EvalTransform::EvalTransform(const TransformConfig& cfg, int64_t image_size)
    : cfg_(cfg), size_(image_size) {
  check_transform_config(cfg_, size_, "eval_transform");
}

Image EvalTransform::resize_crop(const Image& image) const {
  check_image(image, "EvalTransform");
  const auto [h, w] = shorter_side_size(image.height, image.width, size_);
  const Image resized = resize_bicubic(image, h, w);
  // torchvision CenterCrop: int(round((H - S) / 2)) with Python's half-to-even round.
  const int64_t top = round_half_even(static_cast<double>(h - size_) / 2.0);
  const int64_t left = round_half_even(static_cast<double>(w - size_) / 2.0);
  return crop(resized, top, left, size_, size_);
}

torch::Tensor EvalTransform::operator()(const RawSample& sample) const {
  return to_normalized_tensor(resize_crop(sample_image(sample, cfg_.reduced_decode ? size_ : 0)),
                              cfg_.mean, cfg_.std);
}

}  // namespace coca::data
