// Model interchange: one forward pass dumped to safetensors (`coca forward`), export of a
// checkpoint to open_clip v2.32.0 (model-config JSON + safetensors state dict) or to our
// own pickle-free safetensors folder (`coca export`), and import of open_clip weights as
// a native checkpoint folder (`coca import`). See ../shared/DESIGN.md §2 for the layouts.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "coca/io/state_dict.h"
#include "coca/model/coca.h"
#include "coca/model/model_config.h"

namespace coca::io {

/// Reads a model config file: an open_clip model-config JSON (extension .json, or text
/// starting with '{') via config_from_open_clip_json, else our YAML with a `model:`
/// section. Throws IoError when the file cannot be read, ConfigError when it is invalid.
model::CoCaConfig read_model_config_file(const std::filesystem::path& path);

/// One forward pass of `model` (eval mode, no grad) on images [B, 3, H, W] float and text
/// [B, T] int64, as named tensors: fwd.image_features [B, E], fwd.text_features [B, E],
/// fwd.image_latent [B, E], fwd.text_latent [B, E], fwd.image_embs (image tokens),
/// fwd.text_embs [B, T, W], fwd.logits [B, T-1, V], fwd.labels [B, T-1] (text[:, 1:]),
/// fwd.logit_scale [], fwd.logits_per_image [B, B], fwd.logits_per_text [B, B],
/// loss.contrastive, loss.caption, loss.total [] (CoCaLoss weights 1 and 2, mean
/// reduction, caption pad id = model config text.pad_id).
NamedTensors forward_outputs(model::CoCa& model, const torch::Tensor& images,
                             const torch::Tensor& text);

/// Empty when `config` can be written as an open_clip CoCa; otherwise one line listing
/// every difference (layout, pooler mode, legacy CLS mask, tied embeddings, ...).
std::string open_clip_export_problems(const model::CoCaConfig& config);

/// open_clip's model-config JSON (embed_dim, init_logit_scale, vision_cfg, text_cfg,
/// multimodal_cfg) for `config`, pretty-printed: exactly open_clip.CoCa's keyword
/// arguments, so `open_clip.CoCa(**json.load(f))` builds the model. Throws
/// std::invalid_argument with open_clip_export_problems() when it cannot be exported.
/// config_from_open_clip_json(result, config.name + ".json") reproduces `config`.
std::string open_clip_config_json(const model::CoCaConfig& config);

/// Writes `dir`/open_clip_model.safetensors (open_clip's state-dict names and shapes,
/// contiguous fp32, 0-d logit_scale), `dir`/open_clip_config.json and, when
/// `tokenizer_file` is not empty, a copy of it into `dir`. Throws std::invalid_argument
/// (see open_clip_config_json) for a model that is not open_clip-exportable.
void export_open_clip(model::CoCa& model, const std::string& tokenizer_file,
                      const std::filesystem::path& dir);

/// Metadata written into our own model.safetensors.
inline constexpr const char* kSafetensorsFormat = "coca-safetensors";
inline constexpr int kSafetensorsFormatVersion = 1;

/// Writes `dir`/model.safetensors (state_dict names, metadata format, format_version,
/// model_name), `dir`/model.yaml (config::to_yaml of the model config) and, when
/// `tokenizer_file` is not empty, a copy of it into `dir`. Works for every layout.
void export_safetensors(model::CoCa& model, const std::string& tokenizer_file,
                        const std::filesystem::path& dir);

/// Builds a model from `config` and loads the safetensors `weights` into it (strict; one
/// line per missing/unexpected/mis-shaped tensor in the IoError). A
/// visual.positional_embedding whose grid differs from config.vision is resized
/// (bicubic, interpolate_positional_embedding) with a log line. Returned in eval mode.
model::CoCa load_model_from_safetensors(const model::CoCaConfig& config,
                                        const std::filesystem::path& weights);

struct ImportOptions {
  std::filesystem::path weights;       ///< open_clip state dict (.safetensors)
  std::filesystem::path model_config;  ///< open_clip model-config JSON
  std::string tokenizer_type = "clip_bpe";  ///< clip_bpe | sentencepiece
  std::string tokenizer_path;          ///< vocabulary / .model; empty = none recorded
  int64_t image_size = 0;              ///< > 0: import at this input resolution
};

/// Imports open_clip weights as a native checkpoint under `out` (a Checkpointer root:
/// `out`/step_00000000 with model.pt, config.yaml, train_state.yaml, format), readable by
/// train::load_checkpoint_model(out) and train.init_from. Returns the checkpoint folder.
std::filesystem::path import_open_clip(const ImportOptions& options,
                                       const std::filesystem::path& out);

}  // namespace coca::io
