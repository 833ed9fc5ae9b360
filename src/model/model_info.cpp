#include "coca/model/model_info.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

namespace coca::model {
namespace {

using Add = std::function<void(const std::string&, std::vector<int64_t>)>;

void layer_norm(const Add& add, const std::string& prefix, int64_t width) {
  add(prefix + ".weight", {width});
  add(prefix + ".bias", {width});
}

void linear(const Add& add, const std::string& prefix, int64_t in, int64_t out) {
  add(prefix + ".weight", {out, in});
  add(prefix + ".bias", {out});
}

void attention(const Add& add, const std::string& prefix, int64_t d, int64_t kdim) {
  if (kdim == d) {
    add(prefix + ".in_proj_weight", {3 * d, d});
  } else {
    add(prefix + ".q_proj_weight", {d, d});
    add(prefix + ".k_proj_weight", {d, kdim});
    add(prefix + ".v_proj_weight", {d, kdim});
  }
  add(prefix + ".in_proj_bias", {3 * d});
  linear(add, prefix + ".out_proj", d, d);
}

void mlp(const Add& add, const std::string& prefix, int64_t width, int64_t hidden) {
  linear(add, prefix + ".c_fc", width, hidden);
  linear(add, prefix + ".c_proj", hidden, width);
}

void residual_block(const Add& add, const std::string& prefix, int64_t width, int64_t hidden,
                    bool cross) {
  layer_norm(add, prefix + ".ln_1", width);
  attention(add, prefix + ".attn", width, width);
  if (cross) layer_norm(add, prefix + ".ln_1_kv", width);
  layer_norm(add, prefix + ".ln_2", width);
  mlp(add, prefix + ".mlp", width, hidden);
}

void decoder_layer(const Add& add, const std::string& prefix, int64_t width, int64_t hidden) {
  layer_norm(add, prefix + ".ln_1", width);
  attention(add, prefix + ".attn", width, width);
  layer_norm(add, prefix + ".ln_cross", width);
  layer_norm(add, prefix + ".ln_cross_kv", width);
  attention(add, prefix + ".cross_attn", width, width);
  layer_norm(add, prefix + ".ln_2", width);
  mlp(add, prefix + ".mlp", width, hidden);
}

void pooler(const Add& add, const std::string& prefix, int64_t width, int64_t context,
            int64_t queries) {
  add(prefix + ".query", {queries, width});
  attention(add, prefix + ".attn", width, context);
  layer_norm(add, prefix + ".ln_q", width);
  layer_norm(add, prefix + ".ln_k", context);
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// 2*m*n*k FLOPs of one self- or cross-attention layer: t queries of width d over s
// keys of width kdim.
double attention_flops(double t, double s, double d, double kdim) {
  return 2 * t * d * d          // Q projection
         + 2 * 2 * s * kdim * d  // K and V projections
         + 2 * 2 * t * s * d     // Q K^T and A V
         + 2 * t * d * d;        // output projection
}

double mlp_flops(double t, double d, double hidden) { return 2 * 2 * t * d * hidden; }

}  // namespace

std::vector<int64_t> conv_stem_channels(const VisionConfig& v) {
  std::vector<int64_t> channels;
  if (v.stem != "conv") return channels;
  for (int64_t p = v.patch_size, c = v.width / std::max<int64_t>(1, v.patch_size / 2); p > 1;
       p /= 2, c *= 2) {
    channels.push_back(c);
  }
  return channels;
}

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (const auto s : shape) n *= s;
  return n;
}

std::vector<ParamSpec> parameter_specs(const CoCaConfig& c) {
  std::vector<ParamSpec> specs;
  const Add add = [&](const std::string& name, std::vector<int64_t> shape) {
    specs.push_back({name, std::move(shape)});
  };
  const auto& v = c.vision;
  const auto& t = c.text;
  const auto& m = c.multimodal;
  const int64_t dt = t.width;

  add("logit_scale", {});
  // text
  add("text.token_embedding.weight", {t.vocab_size, t.width});
  add("text.positional_embedding", {t.context_length + 1, t.width});
  add("text.cls_emb", {t.width});
  for (int64_t i = 0; i < t.layers; ++i) {
    residual_block(add, fmt::format("text.transformer.resblocks.{}", i), t.width, t.mlp_dim, false);
  }
  layer_norm(add, "text.ln_final", t.width);
  add("text.text_projection", {t.width, c.embed_dim});
  // visual
  const int64_t grid = v.image_size / v.patch_size;
  const auto stem = conv_stem_channels(v);
  int64_t in = 3;
  for (size_t i = 0; i < stem.size(); ++i) {
    const auto prefix = fmt::format("visual.stem.{}", i);
    add(prefix + ".conv.weight", {stem[i], in, 3, 3});
    add(prefix + ".norm.weight", {stem[i]});
    add(prefix + ".norm.bias", {stem[i]});
    in = stem[i];
  }
  const int64_t kernel = stem.empty() ? v.patch_size : 1;
  add("visual.conv1.weight", {v.width, in, kernel, kernel});
  if (v.patch_bias) add("visual.conv1.bias", {v.width});
  if (v.class_token) add("visual.class_embedding", {v.width});
  add("visual.positional_embedding", {grid * grid + (v.class_token ? 1 : 0), v.width});
  layer_norm(add, "visual.ln_pre", v.width);
  for (int64_t i = 0; i < v.layers; ++i) {
    residual_block(add, fmt::format("visual.transformer.resblocks.{}", i), v.width, v.mlp_dim,
                   false);
  }
  pooler(add, "visual.attn_pool", dt, v.width, c.pooler.queries);
  if (c.pooler.mode != "single") {
    pooler(add, "visual.attn_pool_contrastive", dt, c.pooler.mode == "cascade" ? dt : v.width, 1);
  }
  layer_norm(add, "visual.ln_post", dt);
  add("visual.proj", {dt, c.embed_dim});
  // text_decoder
  for (int64_t i = 0; i < m.layers; ++i) {
    if (c.layout == "open_clip") {
      residual_block(add, fmt::format("text_decoder.resblocks.{}", i), dt, m.mlp_dim, false);
      residual_block(add, fmt::format("text_decoder.cross_attn.{}", i), dt, m.mlp_dim, true);
    } else {
      decoder_layer(add, fmt::format("text_decoder.resblocks.{}", i), dt, m.mlp_dim);
    }
  }
  layer_norm(add, "text_decoder.ln_final", dt);
  if (!m.tie_embeddings) add("text_decoder.text_projection", {dt, t.vocab_size});
  return specs;
}

std::string parameter_part(const std::string& name) {
  if (starts_with(name, "visual.attn_pool")) return "poolers";
  if (starts_with(name, "visual.ln_post") || name == "visual.proj" ||
      name == "text.text_projection" || name == "logit_scale") {
    return "contrastive_heads";
  }
  if (starts_with(name, "visual.")) return "image_encoder";
  if (starts_with(name, "text.token_embedding") || name == "text.positional_embedding" ||
      name == "text.cls_emb" || name == "text_decoder.text_projection") {
    return "embeddings";
  }
  if (starts_with(name, "text.")) return "unimodal_decoder";
  if (starts_with(name, "text_decoder.")) return "multimodal_decoder";
  return "other";
}

ParamCounts count_parameters(const std::vector<ParamSpec>& specs) {
  ParamCounts counts;
  for (const auto& s : specs) {
    const int64_t n = s.numel();
    const auto part = parameter_part(s.name);
    if (part == "image_encoder") counts.image_encoder += n;
    if (part == "poolers") counts.poolers += n;
    if (part == "unimodal_decoder") counts.unimodal_decoder += n;
    if (part == "multimodal_decoder") counts.multimodal_decoder += n;
    if (part == "embeddings") counts.embeddings += n;
    if (part == "contrastive_heads") counts.contrastive_heads += n;
    counts.total += n;
    counts.tensors += 1;
  }
  return counts;
}

FlopCounts forward_flops(const CoCaConfig& c) {
  const auto& v = c.vision;
  const auto& t = c.text;
  const auto& m = c.multimodal;
  const double dv = static_cast<double>(v.width);
  const double dt = static_cast<double>(t.width);
  const double e = static_cast<double>(c.embed_dim);
  const double patches = static_cast<double>((v.image_size / v.patch_size) *
                                             (v.image_size / v.patch_size));
  const double n = patches + (v.class_token ? 1 : 0);
  const double q = static_cast<double>(c.pooler.queries);

  FlopCounts f;
  const auto stem = conv_stem_channels(v);
  if (stem.empty()) {
    f.image_encoder = 2 * patches * (3.0 * v.patch_size * v.patch_size) * dv;
  } else {
    double side = static_cast<double>(v.image_size), in = 3;
    for (const int64_t ch : stem) {
      side /= 2;
      f.image_encoder += 2 * side * side * (9 * in) * static_cast<double>(ch);
      in = static_cast<double>(ch);
    }
    f.image_encoder += 2 * patches * in * dv;  // conv1, 1x1
  }
  f.image_encoder += static_cast<double>(v.layers) *
                     (attention_flops(n, n, dv, dv) + mlp_flops(n, dv, static_cast<double>(v.mlp_dim)));

  f.poolers = attention_flops(q, n, dt, dv);
  if (c.pooler.mode == "cascade") f.poolers += attention_flops(1, q, dt, dt);
  if (c.pooler.mode == "parallel") f.poolers += attention_flops(1, n, dt, dv);
  const double memory = c.pooler.mode == "single" ? q - 1 : q;

  const double lt = static_cast<double>(t.context_length + 1);
  f.unimodal_decoder = static_cast<double>(t.layers) *
                       (attention_flops(lt, lt, dt, dt) + mlp_flops(lt, dt, static_cast<double>(t.mlp_dim)));

  const double ld = static_cast<double>(t.context_length - 1);
  const double mlps = c.layout == "open_clip" ? 2 : 1;
  f.multimodal_decoder =
      static_cast<double>(m.layers) *
      (attention_flops(ld, ld, dt, dt) + attention_flops(ld, memory, dt, dt) +
       mlps * mlp_flops(ld, dt, static_cast<double>(m.mlp_dim)));
  f.multimodal_decoder += 2 * ld * dt * static_cast<double>(t.vocab_size);

  f.contrastive_heads = 2 * dt * e * 2;  // image and text projections
  return f;
}

std::string model_info_text(const CoCaConfig& c) {
  const auto counts = count_parameters(parameter_specs(c));
  const auto flops = forward_flops(c);
  auto line = [](const char* what, int64_t n) {
    return fmt::format("  {:<22}{:>16}  ({:.1f}M)\n", what, with_commas(n),
                       static_cast<double>(n) / 1e6);
  };
  std::string s = fmt::format("model {} (layout {}, pooler {}, output projection {})\n", c.name,
                              c.layout, c.pooler.mode,
                              c.multimodal.tie_embeddings ? "tied" : "untied");
  s += "parameters:\n";
  s += line("image encoder", counts.image_encoder);
  s += line("poolers", counts.poolers);
  s += line("unimodal decoder", counts.unimodal_decoder);
  s += line("multimodal decoder", counts.multimodal_decoder);
  s += line("embeddings + output", counts.embeddings);
  s += line("contrastive heads", counts.contrastive_heads);
  s += line("total", counts.total);
  s += fmt::format("  {:<22}{:>16}\n", "tensors", counts.tensors);
  s += fmt::format(
      "paper Tab. 1 count: {} ({:.1f}M = image encoder {:.1f}M + text decoder {:.1f}M)\n",
      with_commas(counts.paper_count()), static_cast<double>(counts.paper_count()) / 1e6,
      static_cast<double>(counts.image_encoder) / 1e6,
      static_cast<double>(counts.paper_count() - counts.image_encoder) / 1e6);
  s += fmt::format("forward FLOPs per sample ({} px, {} text tokens; 2*m*n*k per matmul):\n",
                   c.vision.image_size, c.text.context_length);
  auto gf = [](const char* what, double x) { return fmt::format("  {:<22}{:>12.2f} GFLOP\n", what, x / 1e9); };
  s += gf("image encoder", flops.image_encoder);
  s += gf("poolers", flops.poolers);
  s += gf("unimodal decoder", flops.unimodal_decoder);
  s += gf("multimodal decoder", flops.multimodal_decoder);
  s += gf("contrastive heads", flops.contrastive_heads);
  s += gf("total", flops.total());
  s += fmt::format("  training step ~ 3x forward: {:.2f} GFLOP per sample\n", 3 * flops.total() / 1e9);
  return s;
}

}  // namespace coca::model
