#include "coca/eval/inference.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "coca/common/error.h"
#include "coca/data/sample.h"
#include "coca/eval/coca_step_model.h"
#include "coca/eval/generate.h"
#include "coca/io/safetensors.h"

namespace coca::eval {
namespace fs = std::filesystem;

torch::Tensor load_image_file(const std::string& path, const data::EvalTransform& transform) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path, "cannot open the image file");
  data::RawSample sample;
  sample.key = path;
  sample.image_name = path;
  sample.image_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (sample.image_bytes.empty()) throw DataError(path, path, "empty image file");
  return transform(sample);
}

std::vector<std::string> list_image_files(const std::vector<std::string>& specs) {
  static const std::vector<std::string> kExt = {".jpg", ".jpeg", ".png", ".webp", ".bmp"};
  std::vector<std::string> out;
  for (const auto& spec : specs) {
    std::error_code ec;
    if (fs::is_directory(spec, ec)) {
      for (const auto& entry : fs::directory_iterator(spec)) {
        if (!entry.is_regular_file()) continue;
        std::string ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (std::find(kExt.begin(), kExt.end(), ext) != kExt.end()) {
          out.push_back(entry.path().string());
        }
      }
    } else if (fs::exists(spec, ec)) {
      out.push_back(spec);
    } else {
      throw IoError(spec, "no such image file or folder");
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Caption> caption_images(model::CoCa& model, const data::Tokenizer& tokenizer,
                                    const torch::Tensor& images, const GenerateConfig& cfg,
                                    uint64_t seed, int64_t batch) {
  TORCH_CHECK(images.dim() == 4, "caption_images: expected images [N, 3, S, S], got ",
              images.sizes());
  TORCH_CHECK(batch >= 1, "caption_images: batch must be >= 1");
  GenerateConfig run = cfg;
  run.max_len = std::min(run.max_len, model->config.text.context_length);
  const SpecialTokens special{tokenizer.bos_id(), tokenizer.eos_id()};
  const auto device = model->logit_scale.device();
  std::vector<Caption> out;
  const int64_t n = images.size(0);
  for (int64_t start = 0, b = 0; start < n; start += batch, ++b) {
    const int64_t rows = std::min(batch, n - start);
    CoCaStepModel step(model, images.narrow(0, start, rows).to(device), run.kv_cache);
    step.limit_vocab(tokenizer.vocab_size());
    const auto result = generate(step, rows, run, special, seed + static_cast<uint64_t>(b));
    for (const auto& ids : result.tokens) out.push_back({tokenizer.decode(ids), ids});
  }
  return out;
}

GenerationTiming time_generation(model::CoCa& model, const torch::Tensor& images,
                                 GenerateConfig cfg, const SpecialTokens& special) {
  cfg.max_len = std::min(cfg.max_len, model->config.text.context_length);
  cfg.min_len = cfg.max_len;
  const auto start = std::chrono::steady_clock::now();
  CoCaStepModel step(model, images.to(model->logit_scale.device()), cfg.kv_cache);
  const auto result = generate(step, images.size(0), cfg, special);
  GenerationTiming t;
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& seq : result.tokens) t.tokens += static_cast<int64_t>(seq.size());
  t.tokens_per_s = static_cast<double>(t.tokens) / std::max(t.seconds, 1e-9);
  return t;
}

torch::Tensor embed_images(model::CoCa& model, const torch::Tensor& images, int64_t batch) {
  torch::NoGradGuard no_grad;
  const auto device = model->logit_scale.device();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    const auto x = images.narrow(0, start, std::min(batch, images.size(0) - start)).to(device);
    parts.push_back(torch::nn::functional::normalize(
                        model->encode_image(x).latent,
                        torch::nn::functional::NormalizeFuncOptions().dim(-1))
                        .cpu());
  }
  if (parts.empty()) return torch::empty({0, model->config.embed_dim});
  return torch::cat(parts, 0);
}

torch::Tensor embed_texts(model::CoCa& model, const data::Tokenizer& tokenizer,
                          const std::vector<std::string>& texts, int64_t batch) {
  torch::NoGradGuard no_grad;
  const auto device = model->logit_scale.device();
  std::vector<torch::Tensor> parts;
  for (size_t start = 0; start < texts.size(); start += static_cast<size_t>(batch)) {
    const auto end = std::min(texts.size(), start + static_cast<size_t>(batch));
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                         texts.begin() + static_cast<std::ptrdiff_t>(end));
    const auto ids = tokenizer.encode_batch(chunk, model->config.text.context_length).to(device);
    parts.push_back(torch::nn::functional::normalize(
                        model->encode_text(ids).latent,
                        torch::nn::functional::NormalizeFuncOptions().dim(-1))
                        .cpu());
  }
  if (parts.empty()) return torch::empty({0, model->config.embed_dim});
  return torch::cat(parts, 0);
}

void write_embeddings(const std::string& path, const torch::Tensor& image_embeddings,
                      const std::vector<std::string>& image_paths,
                      const torch::Tensor& text_embeddings, const std::vector<std::string>& texts) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::map<std::string, std::string> metadata;
  if (image_embeddings.defined()) {
    tensors.emplace_back("image_embeddings", image_embeddings.to(torch::kFloat));
    metadata["image_paths"] = nlohmann::json(image_paths).dump();
  }
  if (text_embeddings.defined()) {
    tensors.emplace_back("text_embeddings", text_embeddings.to(torch::kFloat));
    metadata["texts"] = nlohmann::json(texts).dump();
  }
  io::write_safetensors(path, tensors, metadata);
}

}  // namespace coca::eval
