// Model configuration (no torch include). CoCa: arXiv 2205.01917, Tab. 1 for the
// variants; ../shared/DESIGN.md §1-2 for the `paper` and `open_clip` layouts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coca::model {

/// ViT image encoder (paper §3.1; open_clip `visual`).
struct VisionConfig {
  int64_t image_size = 288;  ///< input side in pixels (paper: 288, then 576)
  int64_t patch_size = 18;   ///< patch side in pixels; image_size must be divisible by it
  int64_t width = 768;       ///< hidden width D
  int64_t layers = 12;       ///< transformer blocks
  int64_t heads = 12;        ///< attention heads; width must be divisible by it
  int64_t mlp_dim = 3072;    ///< MLP hidden width
  bool patch_bias = false;   ///< bias in the patch embedding (open_clip: none)
  /// patch: ViT's patch embedding, one conv with kernel = stride = patch_size (paper,
  /// open_clip). conv: Xiao et al. 2021's convolutional stem (arXiv 2106.14881): log2(patch)
  /// 3x3 stride-2 convolutions, each with BatchNorm and ReLU, channels doubling up to the
  /// width, then conv1 as a 1x1 convolution; patch_size must be a power of two. BatchNorm
  /// uses each forward call's batch (per rank, like DDP without SyncBatchNorm); the
  /// trainer averages its running statistics over ranks after every step.
  std::string stem = "patch";
  bool class_token = true;   ///< prepend a learned class token (open_clip: yes)
  bool checkpoint_activations = false;  ///< recompute block activations in backward
};

/// Output channels of each 3x3 stride-2 layer of the `conv` stem: width / (patch / 2),
/// doubling, log2(patch) layers, the last one `width` (16 px, width 768: 96, 192, 384, 768).
/// Empty for the `patch` stem.
std::vector<int64_t> conv_stem_channels(const VisionConfig& vision);

/// Unimodal text decoder (causal, no cross-attention; open_clip `text`).
struct TextConfig {
  int64_t vocab_size = 64000;     ///< token vocabulary V
  int64_t context_length = 64;    ///< text tokens T (positional rows: T + 1 with the CLS)
  int64_t width = 768;            ///< hidden width
  int64_t layers = 12;            ///< unimodal layers (paper: n_uni)
  int64_t heads = 12;             ///< attention heads
  int64_t mlp_dim = 3072;         ///< MLP hidden width
  int64_t pad_id = 0;             ///< padding token id (ignored by the caption loss)
  bool legacy_cls_mask = false;   ///< open_clip's off-by-one CLS padding mask (its weights need it)
  bool checkpoint_activations = false;  ///< recompute block activations in backward
};

/// Multimodal text decoder (causal self-attention + cross-attention to image tokens).
struct MultimodalConfig {
  int64_t layers = 12;             ///< multimodal layers (paper: n_multi)
  int64_t heads = 12;              ///< attention heads (width = text.width)
  int64_t mlp_dim = 3072;          ///< MLP hidden width
  bool tie_embeddings = false;     ///< output projection shares the token embedding
  bool checkpoint_activations = false;  ///< recompute block activations in backward
};

/// Attentional poolers over the ViT tokens (paper Tab. 8f).
struct PoolerConfig {
  /// cascade: Q queries feed the decoder, 1 query over those gives the embedding (paper);
  /// parallel: both poolers read the ViT tokens; single: open_clip's one pooler whose
  /// output 0 is the embedding and 1..Q-1 go to the decoder.
  std::string mode = "cascade";
  int64_t queries = 256;  ///< learned queries of the decoder-side pooler
  int64_t heads = 8;      ///< attention heads of the poolers
};

/// The whole CoCa model.
struct CoCaConfig {
  std::string name = "coca_base";  ///< preset or free-form name, recorded in checkpoints
  std::string layout = "paper";    ///< paper | open_clip (module tree, see DESIGN.md §2)
  int64_t embed_dim = 768;         ///< contrastive embedding width
  double init_logit_scale = 2.659260036932778;  ///< ln(1/0.07)
  VisionConfig vision;
  TextConfig text;
  MultimodalConfig multimodal;
  PoolerConfig pooler;
};

}  // namespace coca::model
