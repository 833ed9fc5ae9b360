// open_clip interop: reading its CoCa model-config JSON (model_configs/coca_*.json,
// v2.32.0) into a CoCaConfig with the `open_clip` layout.
#pragma once

#include <string>

#include "coca/model/model_config.h"

namespace coca::io {

/// Parses an open_clip CoCa model config (JSON text; `origin` names it in messages and
/// becomes the config name's stem). Missing fields take open_clip's defaults
/// (CLIPVisionCfg: image_size 224, patch_size 16, width 768, layers 12, head_width 64,
/// mlp_ratio 4, attn_pooler_queries 256, attn_pooler_heads 8; CLIPTextCfg:
/// context_length 77, vocab_size 49408, width 512, heads 8, layers 12, mlp_ratio 4,
/// pad_id 0; MultimodalCfg: heads 8, layers 12). As in open_clip the multimodal
/// decoder's MLP is always 4 x width, its vocabulary is text_cfg.vocab_size, and its
/// memory width is embed_dim. The result has legacy_cls_mask = true (open_clip's mask).
/// Throws ConfigError naming every unsupported or inconsistent field (timm/HF towers,
/// layer scale, quick_gelu, embed_cls false, embed_dim != multimodal width, ...).
model::CoCaConfig config_from_open_clip_json(const std::string& json_text,
                                             const std::string& origin);

}  // namespace coca::io
