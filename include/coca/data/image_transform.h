// Image decoding and the train/eval image transforms. Decoding uses OpenCV (kept in the
// .cpp); resizing is our own port of Pillow's antialiased separable bicubic resampling,
// so the eval transform reproduces open_clip's torchvision+PIL preprocessing
// (Resize(S, BICUBIC) -> CenterCrop(S) -> ToTensor -> Normalize) bit for bit on the
// golden images (tools/make_golden_images.py), and the train transform is torchvision's
// RandomResizedCrop (+ optional flip) with our own seeded RNG.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "coca/data/data_config.h"
#include "coca/data/sample.h"

namespace coca::data {

/// A decoded image: HWC, RGB, uint8, rows packed (stride = 3 * width).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> rgb;  ///< height * width * 3 bytes

  const uint8_t* pixel(int64_t y, int64_t x) const { return &rgb[(y * width + x) * 3]; }
  uint8_t* pixel(int64_t y, int64_t x) { return &rgb[(y * width + x) * 3]; }
};

/// Decodes an encoded image (jpg/png/webp/bmp/...; gray and RGBA become RGB, alpha is
/// dropped as PIL's convert("RGB") does). `name` (file or sample) is used in messages.
/// `min_side` > 0 allows a reduced-size JPEG decode (DCT-domain 1/2, 1/4 or 1/8) as long
/// as the shorter side stays >= min_side; other formats are always decoded at full size.
/// Throws DataError(name) on corrupt or unsupported data.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                   int64_t min_side = 0);

/// The sample's image: its `pixels` when set (checked against height/width), else
/// decode_image(image_bytes, min_side). Throws DataError naming the sample key.
Image sample_image(const RawSample& sample, int64_t min_side = 0);

/// Encodes as PNG (lossless) or JPEG (`ext` "png" | "jpg"/"jpeg", quality 0..100).
std::vector<uint8_t> encode_image(const Image& image, const std::string& ext, int quality = 95);

/// For `coca data convert`: the image decoded with its alpha channel, transparent pixels
/// composited onto the grey level `background` (0..255; -1 = alpha dropped as in
/// decode_image), shrunk (resize_bicubic, aspect kept) so that its longer side is at most
/// `max_side` (0 = any size), re-encoded as PNG. Returns empty when neither changes
/// anything (no alpha channel or background -1, and the image fits). Throws DataError(name).
std::vector<uint8_t> flatten_image(const std::vector<uint8_t>& bytes, const std::string& name,
                                   int background, int64_t max_side);

/// Pillow's Image.resize(BICUBIC) on 8-bit RGB: separable, horizontal pass first,
/// kernel a = -0.5 with its support widened by the downscale factor (antialiasing),
/// 22-bit fixed-point coefficients, uint8 rounding after each pass. An axis whose size
/// does not change is copied, as Pillow does.
Image resize_bicubic(const Image& image, int64_t out_height, int64_t out_width);

/// Copies rows [top, top+height) and columns [left, left+width); must lie inside.
Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width);
/// Mirrors left-right.
Image hflip(const Image& image);

/// [H, W, 3] uint8 -> [3, H, W] float32: (x / 255 - mean[c]) / std[c].
torch::Tensor to_normalized_tensor(const Image& image, const std::vector<double>& mean,
                                   const std::vector<double>& std);

/// A crop rectangle in pixels.
struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};

/// torchvision RandomResizedCrop.get_params: up to 10 tries of area fraction
/// U(scale_min, scale_max) and log-uniform aspect ratio in (ratio_min, ratio_max),
/// w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio)), accepted when it fits,
/// placed uniformly; otherwise a centred crop clamped to the ratio range.
CropBox random_resized_crop_box(int64_t height, int64_t width, double scale_min, double scale_max,
                                double ratio_min, double ratio_max, std::mt19937_64& rng);

/// Seed of one sample's augmentation from (run seed, epoch, position of the sample in
/// the epoch's order): the same sample gets the same crop whatever thread decodes it.
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t position);

/// torchvision's Resize(size) output for an int size: the shorter side becomes `size`,
/// the longer int(size * long / short). Returns {height, width}.
std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size);

/// Training transform: RandomResizedCrop(image_size, scale, ratio, bicubic), then a
/// horizontal flip with probability 1/2 when `hflip`, then normalisation.
class TrainTransform {
 public:
  /// `image_size` is the resolved output side (cfg.image_size, or the model's when 0).
  TrainTransform(const TransformConfig& cfg, int64_t image_size);
  /// The augmented uint8 image [S, S], before normalisation.
  Image augment(const Image& image, uint64_t seed) const;
  /// sample -> [3, S, S] float32, normalised. Throws DataError on a bad image.
  torch::Tensor operator()(const RawSample& sample, uint64_t seed) const;
  int64_t image_size() const { return size_; }

 private:
  TransformConfig cfg_;
  int64_t size_;
};

/// Evaluation transform: resize the shorter side to image_size (Pillow bicubic with
/// antialiasing), centre crop image_size x image_size (torchvision's rounding),
/// normalise. Matches open_clip's `image_transform(..., is_train=False)` on PIL images.
class EvalTransform {
 public:
  EvalTransform(const TransformConfig& cfg, int64_t image_size);
  /// The resized and cropped uint8 image [S, S], before normalisation.
  Image resize_crop(const Image& image) const;
  /// sample -> [3, S, S] float32, normalised. Throws DataError on a bad image.
  torch::Tensor operator()(const RawSample& sample) const;
  int64_t image_size() const { return size_; }

 private:
  TransformConfig cfg_;
  int64_t size_;
};

}  // namespace coca::data
