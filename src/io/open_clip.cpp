#include "coca/io/open_clip.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "coca/common/error.h"

namespace coca::io {
namespace {

using nlohmann::json;

/// Reads typed fields of one JSON section, collecting every problem.
class Section {
 public:
  Section(const json& root, const std::string& key, const std::string& origin,
          std::vector<std::string>& errors)
      : prefix_(key.empty() ? "" : key + "."), origin_(origin), errors_(errors) {
    if (key.empty()) {
      node_ = root;
    } else if (root.contains(key)) {
      node_ = root.at(key);
      if (!node_.is_object()) {
        error(key, "expects an object");
        node_ = json::object();
      }
    } else {
      node_ = json::object();
    }
  }

  bool has(const std::string& key) const { return node_.contains(key) && !node_.at(key).is_null(); }

  int64_t integer(const std::string& key, int64_t fallback) {
    if (!has(key)) return fallback;
    const auto& v = node_.at(key);
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[0] == v[1]) {
      return v[0].get<int64_t>();  // [224, 224]: square sizes only
    }
    error(prefix_ + key, fmt::format("expects an integer (square sizes only), got {}", v.dump()));
    return fallback;
  }

  double number(const std::string& key, double fallback) {
    if (!has(key)) return fallback;
    const auto& v = node_.at(key);
    if (v.is_number()) return v.get<double>();
    error(prefix_ + key, fmt::format("expects a number, got {}", v.dump()));
    return fallback;
  }

  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const auto& v = node_.at(key);
    if (v.is_boolean()) return v.get<bool>();
    error(prefix_ + key, fmt::format("expects true or false, got {}", v.dump()));
    return fallback;
  }

  std::string string(const std::string& key, const std::string& fallback) {
    if (!has(key)) return fallback;
    const auto& v = node_.at(key);
    if (v.is_string()) return v.get<std::string>();
    error(prefix_ + key, fmt::format("expects a string, got {}", v.dump()));
    return fallback;
  }

  /// A field our model has no equivalent for: only its default (or absence) is accepted.
  void unsupported(const std::string& key, const json& default_value) {
    if (!has(key)) return;
    if (node_.at(key) != default_value) {
      error(prefix_ + key,
            fmt::format("{} is not supported by coca (only {})", node_.at(key).dump(),
                        default_value.is_null() ? "null" : default_value.dump()));
    }
  }

  void error(const std::string& key, const std::string& message) {
    errors_.push_back(fmt::format("{}: '{}' {}", origin_, key, message));
  }

 private:
  json node_;
  std::string prefix_;
  std::string origin_;
  std::vector<std::string>& errors_;
};

}  // namespace

model::CoCaConfig config_from_open_clip_json(const std::string& json_text,
                                             const std::string& origin) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ConfigError(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  if (!root.is_object()) throw ConfigError(fmt::format("{}: expected a JSON object", origin));

  std::vector<std::string> errors;
  model::CoCaConfig c;
  c.name = std::filesystem::path(origin).stem().string();
  c.layout = "open_clip";
  c.pooler.mode = "single";

  Section top(root, "", origin, errors);
  if (!top.has("embed_dim")) top.error("embed_dim", "is required");
  c.embed_dim = top.integer("embed_dim", 512);
  c.init_logit_scale = top.number("init_logit_scale", std::log(1.0 / 0.07));
  top.unsupported("quick_gelu", false);
  top.unsupported("init_logit_bias", nullptr);
  top.unsupported("nonscalar_logit_scale", false);

  Section vision(root, "vision_cfg", origin, errors);
  auto& v = c.vision;
  v.image_size = vision.integer("image_size", 224);
  v.patch_size = vision.integer("patch_size", 16);
  v.width = vision.integer("width", 768);
  v.layers = vision.integer("layers", 12);
  const int64_t head_width = vision.integer("head_width", 64);
  if (head_width <= 0 || v.width % head_width != 0) {
    vision.error("vision_cfg.head_width",
                 fmt::format("({}) must divide vision_cfg.width ({})", head_width, v.width));
  } else {
    v.heads = v.width / head_width;
  }
  const double vision_mlp_ratio = vision.number("mlp_ratio", 4.0);
  v.mlp_dim = static_cast<int64_t>(static_cast<double>(v.width) * vision_mlp_ratio);
  v.patch_bias = false;  // open_clip's conv1 has no bias
  v.class_token = true;
  // A string value selects open_clip's WIP cascade/parallel poolers (ln_post before the
  // poolers); only its released single-pooler CoCa is read here.
  if (!vision.boolean("attentional_pool", false)) {
    vision.error("vision_cfg.attentional_pool", "must be true (open_clip's single attentional pooler)");
  }
  c.pooler.queries = vision.integer("attn_pooler_queries", 256);
  c.pooler.heads = vision.integer("attn_pooler_heads", 8);
  vision.unsupported("ls_init_value", nullptr);
  vision.unsupported("patch_dropout", 0.0);
  vision.unsupported("no_ln_pre", false);
  vision.unsupported("pos_embed_type", "learnable");
  vision.unsupported("pool_type", "tok");
  vision.unsupported("act_kwargs", nullptr);
  vision.unsupported("norm_kwargs", nullptr);
  vision.unsupported("timm_model_name", nullptr);

  Section text(root, "text_cfg", origin, errors);
  auto& t = c.text;
  t.context_length = text.integer("context_length", 77);
  t.vocab_size = text.integer("vocab_size", 49408);
  t.width = text.integer("width", 512);
  t.heads = text.integer("heads", 8);
  t.layers = text.integer("layers", 12);
  t.mlp_dim = static_cast<int64_t>(static_cast<double>(t.width) * text.number("mlp_ratio", 4.0));
  t.pad_id = text.integer("pad_id", 0);
  t.legacy_cls_mask = true;
  if (!text.boolean("embed_cls", false)) {
    text.error("text_cfg.embed_cls", "must be true (CoCa appends a [CLS] token)");
  }
  text.unsupported("ls_init_value", nullptr);
  text.unsupported("no_causal_mask", false);
  text.unsupported("proj_bias", false);
  text.unsupported("proj_type", "linear");
  text.unsupported("act_kwargs", nullptr);
  text.unsupported("norm_kwargs", nullptr);
  text.unsupported("hf_model_name", nullptr);

  Section multimodal(root, "multimodal_cfg", origin, errors);
  auto& m = c.multimodal;
  const int64_t mm_width = multimodal.integer("width", 512);
  m.heads = multimodal.integer("heads", 8);
  m.layers = multimodal.integer("layers", 12);
  m.mlp_dim = 4 * mm_width;  // MultimodalTransformer is built without mlp_ratio
  m.tie_embeddings = false;
  multimodal.unsupported("ls_init_value", nullptr);
  if (mm_width != t.width) {
    multimodal.error("multimodal_cfg.width",
                     fmt::format("({}) must equal text_cfg.width ({}): coca's decoder reads the "
                                 "text tower's token states", mm_width, t.width));
  }
  if (mm_width != c.embed_dim) {
    multimodal.error("multimodal_cfg.width",
                     fmt::format("({}) must equal embed_dim ({}): the image tokens have width "
                                 "embed_dim", mm_width, c.embed_dim));
  }
  if (c.pooler.queries < 2) {
    vision.error("vision_cfg.attn_pooler_queries", "must be >= 2 (query 0 is the embedding)");
  }
  if (!errors.empty()) throw ConfigError(errors);
  return c;
}

}  // namespace coca::io
