// Model interchange: forward dumps, open_clip / safetensors export, open_clip import.
#include "coca/io/interop.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/config/config_io.h"
#include "coca/config/run_config.h"
#include "coca/io/open_clip.h"
#include "coca/io/safetensors.h"
#include "coca/model/vision_transformer.h"
#include "coca/train/checkpoint.h"
#include "coca/train/losses.h"
#include "coca/train/train_state.h"

namespace coca::io {
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string(), std::string("cannot open the ") + what);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void copy_tokenizer(const std::string& tokenizer_file, const fs::path& dir) {
  if (tokenizer_file.empty()) {
    log::warn("[export] the model's config names no tokenizer file; none copied");
    return;
  }
  const fs::path src(tokenizer_file);
  std::error_code ec;
  fs::copy_file(src, dir / src.filename(), fs::copy_options::overwrite_existing, ec);
  if (ec) throw IoError(src.string(), "cannot copy the tokenizer file: " + ec.message());
}

/// Tensors of `model` as contiguous fp32 CPU copies, sorted by name (the order
/// safetensors' save_file uses for same-dtype tensors).
NamedTensors sorted_fp32_state(const model::CoCa& model) {
  NamedTensors out;
  for (const auto& [name, t] : state_dict(*model)) {
    out.emplace_back(name, t.to(torch::kCPU, torch::kFloat).contiguous().clone());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

model::CoCaConfig read_model_config_file(const fs::path& path) {
  const std::string text = read_text(path, "model config");
  const auto first = text.find_first_not_of(" \t\r\n");
  const bool json = path.extension() == ".json" || (first != std::string::npos && text[first] == '{');
  if (json) return config_from_open_clip_json(text, path.string());
  return config::model_from_yaml(text, path.string());
}

NamedTensors forward_outputs(model::CoCa& model, const torch::Tensor& images,
                             const torch::Tensor& text) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3,
              "forward: images must be [B, 3, H, W], got ", images.sizes());
  TORCH_CHECK(text.dim() == 2 && text.scalar_type() == torch::kLong,
              "forward: text must be [B, T] int64, got ", text.sizes(), " ", text.scalar_type());
  TORCH_CHECK(images.size(0) == text.size(0), "forward: images have ", images.size(0),
              " rows but text has ", text.size(0));
  torch::NoGradGuard no_grad;
  model->eval();
  const auto images_f = images.to(torch::kFloat);
  const auto out = model->forward(images_f, text);
  train::CoCaLoss loss;
  loss.lambda_con = 1.0;
  loss.lambda_cap = 2.0;
  loss.pad_id = model->config.text.pad_id;
  const auto parts = loss(out.image_features, out.text_features, out.logit_scale, out.logits, text);
  return {
      {"fwd.image_features", out.image_features},
      {"fwd.text_features", out.text_features},
      {"fwd.image_latent", out.image_latent},
      {"fwd.text_latent", out.text_latent},
      {"fwd.image_embs", out.image_tokens},
      {"fwd.text_embs", out.text_tokens},
      {"fwd.logits", out.logits},
      {"fwd.labels", text.slice(1, 1)},
      {"fwd.logit_scale", out.logit_scale},
      {"fwd.logits_per_image", out.logit_scale * out.image_features.matmul(out.text_features.t())},
      {"fwd.logits_per_text", out.logit_scale * out.text_features.matmul(out.image_features.t())},
      {"loss.contrastive", parts.contrastive},
      {"loss.caption", parts.caption},
      {"loss.total", parts.total},
  };
}

std::string open_clip_export_problems(const model::CoCaConfig& c) {
  std::vector<std::string> p;
  if (c.layout != "open_clip") p.push_back(fmt::format("layout is '{}' (needs open_clip)", c.layout));
  if (c.pooler.mode != "single") {
    p.push_back(fmt::format("pooler.mode is '{}' (needs single)", c.pooler.mode));
  }
  if (!c.text.legacy_cls_mask) p.push_back("text.legacy_cls_mask is false (open_clip's mask needs true)");
  if (c.multimodal.tie_embeddings) p.push_back("multimodal.tie_embeddings is true (open_clip: false)");
  if (c.vision.patch_bias) p.push_back("vision.patch_bias is true (open_clip: false)");
  if (c.vision.stem != "patch") {
    p.push_back(fmt::format("vision.stem is '{}' (open_clip: patch)", c.vision.stem));
  }
  if (!c.vision.class_token) p.push_back("vision.class_token is false (open_clip: true)");
  if (c.vision.heads <= 0 || c.vision.width % c.vision.heads != 0) {
    p.push_back("vision.heads does not divide vision.width");
  }
  if (c.text.width != c.embed_dim) {
    p.push_back(fmt::format("text.width {} != embed_dim {} (open_clip's decoder memory width)",
                            c.text.width, c.embed_dim));
  }
  if (c.multimodal.mlp_dim != 4 * c.text.width) {
    p.push_back(fmt::format("multimodal.mlp_dim {} != 4 * text.width {} (fixed in open_clip)",
                            c.multimodal.mlp_dim, 4 * c.text.width));
  }
  if (c.pooler.queries < 2) p.push_back("pooler.queries < 2");
  if (p.empty()) return "";
  std::string line = fmt::format("model '{}' cannot be exported as open_clip: ", c.name);
  for (size_t i = 0; i < p.size(); ++i) line += (i ? "; " : "") + p[i];
  return line;
}

std::string open_clip_config_json(const model::CoCaConfig& c) {
  const auto problems = open_clip_export_problems(c);
  if (!problems.empty()) throw std::invalid_argument(problems);
  using nlohmann::json;
  json vision = {
      {"image_size", c.vision.image_size},
      {"patch_size", c.vision.patch_size},
      {"width", c.vision.width},
      {"layers", c.vision.layers},
      {"head_width", c.vision.width / c.vision.heads},
      {"mlp_ratio", static_cast<double>(c.vision.mlp_dim) / static_cast<double>(c.vision.width)},
      {"attentional_pool", true},
      {"attn_pooler_queries", c.pooler.queries},
      {"attn_pooler_heads", c.pooler.heads},
      {"output_tokens", true},
  };
  json text = {
      {"context_length", c.text.context_length},
      {"vocab_size", c.text.vocab_size},
      {"width", c.text.width},
      {"heads", c.text.heads},
      {"layers", c.text.layers},
      {"mlp_ratio", static_cast<double>(c.text.mlp_dim) / static_cast<double>(c.text.width)},
      {"pad_id", c.text.pad_id},
      {"embed_cls", true},
      {"output_tokens", true},
  };
  json multimodal = {
      {"context_length", c.text.context_length},
      {"vocab_size", c.text.vocab_size},
      {"width", c.text.width},
      {"heads", c.multimodal.heads},
      {"layers", c.multimodal.layers},
      {"attn_pooler_heads", c.pooler.heads},
  };
  json root = {
      {"embed_dim", c.embed_dim},
      {"init_logit_scale", c.init_logit_scale},
      {"vision_cfg", vision},
      {"text_cfg", text},
      {"multimodal_cfg", multimodal},
  };
  return root.dump(2) + "\n";
}

void export_open_clip(model::CoCa& model, const std::string& tokenizer_file, const fs::path& dir) {
  const std::string json = open_clip_config_json(model->config);  // throws first
  fs::create_directories(dir);
  write_safetensors((dir / "open_clip_model.safetensors").string(), sorted_fp32_state(model));
  std::ofstream out(dir / "open_clip_config.json");
  out << json;
  out.close();
  if (!out) throw IoError((dir / "open_clip_config.json").string(), "cannot write");
  copy_tokenizer(tokenizer_file, dir);
}

void export_safetensors(model::CoCa& model, const std::string& tokenizer_file, const fs::path& dir) {
  fs::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), sorted_fp32_state(model),
                    {{"format", kSafetensorsFormat},
                     {"format_version", std::to_string(kSafetensorsFormatVersion)},
                     {"model_name", model->config.name}});
  std::ofstream out(dir / "model.yaml");
  out << config::to_yaml(model->config);
  out.close();
  if (!out) throw IoError((dir / "model.yaml").string(), "cannot write");
  copy_tokenizer(tokenizer_file, dir);
}

model::CoCa load_model_from_safetensors(const model::CoCaConfig& config, const fs::path& weights) {
  auto file = read_safetensors(weights.string());
  auto it = file.tensors.find("visual.positional_embedding");
  const int64_t grid = config.vision.image_size / config.vision.patch_size;
  const int64_t prefix = config.vision.class_token ? 1 : 0;
  if (it != file.tensors.end() && it->second.dim() == 2 &&
      it->second.size(0) != prefix + grid * grid) {
    const int64_t rows = it->second.size(0) - prefix;
    const auto old_grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(rows))));
    if (rows <= 0 || old_grid * old_grid != rows) {
      throw IoError(weights.string(),
                    fmt::format("tensor 'visual.positional_embedding' has {} rows: not {} + a "
                                "square grid",
                                it->second.size(0), prefix));
    }
    log::info("[import] resizing visual.positional_embedding from a {}x{} to a {}x{} grid "
              "(bicubic) for image size {}",
              old_grid, old_grid, grid, grid, config.vision.image_size);
    it->second = model::interpolate_positional_embedding(it->second.to(torch::kFloat), prefix,
                                                         old_grid, old_grid, grid, grid);
  }
  model::CoCa model(config);
  LoadOptions options;
  options.strict = true;
  options.source = weights.string();
  load_state_dict(*model, file.tensors, options);
  model->eval();
  return model;
}

fs::path import_open_clip(const ImportOptions& options, const fs::path& out) {
  if (options.tokenizer_type != "clip_bpe" && options.tokenizer_type != "sentencepiece") {
    throw std::invalid_argument("import: tokenizer type must be clip_bpe or sentencepiece, got '" +
                                options.tokenizer_type + "'");
  }
  const std::string text = read_text(options.model_config, "open_clip model config");
  auto cfg = config_from_open_clip_json(text, options.model_config.string());
  if (options.image_size > 0) cfg.vision.image_size = options.image_size;
  if (cfg.vision.image_size % cfg.vision.patch_size != 0) {
    throw ConfigError(fmt::format("import: image size {} is not a multiple of the patch size {}",
                                  cfg.vision.image_size, cfg.vision.patch_size));
  }
  auto model = load_model_from_safetensors(cfg, options.weights);

  config::RunConfig run;
  run.model = cfg;
  run.data.tokenizer.type = options.tokenizer_type;
  run.data.tokenizer.path =
      options.tokenizer_path.empty() ? "" : fs::absolute(options.tokenizer_path).string();
  run.data.tokenizer.context_length = cfg.text.context_length;
  train::Checkpointer checkpointer(out, 1);
  const auto dir = checkpointer.save(0, [&](const fs::path& tmp) {
    torch::save(model, (tmp / "model.pt").string());
    train::TrainState{}.save(tmp / "train_state.yaml");
    std::ofstream(tmp / "config.yaml") << config::to_yaml(run);
  });
  log::info("[import] wrote {} ({} from {})", dir.string(), cfg.name, options.weights.string());
  return dir;
}

}  // namespace coca::io
