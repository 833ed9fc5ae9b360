// Parameter counts and forward FLOPs of a CoCa config, computed analytically (no tensors
// are allocated, so coca_2b's 8.4 GB of fp32 weights never need to exist). Tests check
// the analytic parameter list against the real module's named_parameters().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coca/model/model_config.h"

namespace coca::model {

/// One parameter tensor: its state-dict name and shape.
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

/// Every parameter CoCa(config) registers, by name and shape (order not guaranteed).
std::vector<ParamSpec> parameter_specs(const CoCaConfig& config);

/// The part of the model a parameter belongs to (by name):
///   image_encoder: visual.* except the poolers, ln_post and proj;
///   poolers: visual.attn_pool.*, visual.attn_pool_contrastive.*;
///   unimodal_decoder: text.transformer.*, text.ln_final;
///   multimodal_decoder: text_decoder.* except text_projection;
///   embeddings: text.token_embedding, text.positional_embedding, text.cls_emb and the
///     output projection text_decoder.text_projection;
///   contrastive_heads: visual.ln_post, visual.proj, text.text_projection, logit_scale.
std::string parameter_part(const std::string& name);

/// Parameter counts per part, and the total.
struct ParamCounts {
  int64_t image_encoder = 0;
  int64_t poolers = 0;
  int64_t unimodal_decoder = 0;
  int64_t multimodal_decoder = 0;
  int64_t embeddings = 0;
  int64_t contrastive_heads = 0;
  int64_t total = 0;
  int64_t tensors = 0;
  /// Paper Tab. 1's count: image encoder + text decoder (unimodal + multimodal +
  /// embeddings + output projection); poolers and contrastive heads excluded.
  int64_t paper_count() const {
    return image_encoder + unimodal_decoder + multimodal_decoder + embeddings;
  }
};
ParamCounts count_parameters(const std::vector<ParamSpec>& specs);

/// Forward FLOPs for ONE sample at the configured image size and text length T
/// (= context_length), counting 2*m*n*k for every matrix product: patch embedding,
/// every linear layer, Q K^T and A V of every attention (full T x S matrices, causal
/// masking not subtracted), poolers, contrastive projections, output logits. Norms,
/// softmax, GELU, bias adds and residual adds are not counted. The text tower runs on
/// T + 1 positions (with [CLS]), the multimodal decoder on T - 1 (teacher forcing).
struct FlopCounts {
  double image_encoder = 0;
  double poolers = 0;
  double unimodal_decoder = 0;
  double multimodal_decoder = 0;  ///< including the output logits
  double contrastive_heads = 0;
  double total() const {
    return image_encoder + poolers + unimodal_decoder + multimodal_decoder + contrastive_heads;
  }
};
FlopCounts forward_flops(const CoCaConfig& config);

/// The human-readable report `coca model-info` prints.
std::string model_info_text(const CoCaConfig& config);

}  // namespace coca::model
