// Inference helpers behind `coca caption`, `coca embed` and the evaluator: image files
// through the eval transform, batched captioning (CoCa arXiv 2205.01917 §4.3), normalised
// image/text embeddings (§4.2) and their safetensors output.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coca/data/image_transform.h"
#include "coca/data/tokenizer.h"
#include "coca/eval/eval_config.h"
#include "coca/eval/generate.h"
#include "coca/model/coca.h"

namespace coca::eval {

/// Reads and decodes one image file and applies `transform` -> [3, S, S] float32.
/// Throws IoError (missing/unreadable file) or DataError (not an image), naming the file.
torch::Tensor load_image_file(const std::string& path, const data::EvalTransform& transform);

/// Image files of `specs` (files as given; folders: their files with an image extension
/// jpg/jpeg/png/webp/bmp, not recursive), all sorted by path. Throws IoError for a spec
/// that does not exist.
std::vector<std::string> list_image_files(const std::vector<std::string>& specs);

/// One generated caption.
struct Caption {
  std::string text;
  std::vector<int64_t> ids;  ///< without start and end tokens
};

/// images [N, 3, S, S] -> one caption each, `batch` images per generate() call.
/// cfg.max_len is capped at the model's context_length. `seed` seeds sampling (per batch
/// seed + batch index).
std::vector<Caption> caption_images(model::CoCa& model, const data::Tokenizer& tokenizer,
                                    const torch::Tensor& images, const GenerateConfig& cfg,
                                    uint64_t seed = 0, int64_t batch = 16);

/// One timed generation run (`coca bench generate`).
struct GenerationTiming {
  double seconds = 0;      ///< wall time of generate() (image encoding included)
  int64_t tokens = 0;      ///< generated tokens summed over images (beams not counted)
  double tokens_per_s = 0;
};
/// Generates exactly cfg.max_len tokens per image (the end token is blocked until then:
/// min_len = max_len) for images [N, 3, S, S] and times it. `special` as generate().
GenerationTiming time_generation(model::CoCa& model, const torch::Tensor& images,
                                 GenerateConfig cfg, const SpecialTokens& special);

/// images [N, 3, S, S] -> L2-normalised image embeddings [N, E] (CPU), batched.
torch::Tensor embed_images(model::CoCa& model, const torch::Tensor& images, int64_t batch = 64);
/// texts -> L2-normalised text embeddings [M, E] (CPU), tokenised at the model's
/// context_length, batched.
torch::Tensor embed_texts(model::CoCa& model, const data::Tokenizer& tokenizer,
                          const std::vector<std::string>& texts, int64_t batch = 256);

/// Writes `image_embeddings` [N, E] and/or `text_embeddings` [M, E] (undefined = left
/// out) to a safetensors file; metadata `image_paths` / `texts` hold JSON-encoded lists
/// in row order.
void write_embeddings(const std::string& path, const torch::Tensor& image_embeddings,
                      const std::vector<std::string>& image_paths,
                      const torch::Tensor& text_embeddings, const std::vector<std::string>& texts);

}  // namespace coca::eval
