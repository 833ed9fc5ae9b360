// CoCa model: module tree vs open_clip's key lists, parameter counts vs paper Tab. 1,
// invariants (causality, masks, shapes), tied embeddings, activation checkpointing.
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/io/open_clip.h"
#include "coca/model/coca.h"
#include "coca/model/model_info.h"
#include "test_utils.h"

namespace coca::model {
namespace {

using coca::testing::reference_dir;
using coca::testing::SeededTest;

CoCaConfig preset(const std::string& name) {
  return config::model_from_yaml(config::preset_yaml(name), name);
}

using Shapes = std::map<std::string, std::vector<int64_t>>;

Shapes module_shapes(CoCa& model) {
  Shapes out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

Shapes spec_shapes(const CoCaConfig& cfg) {
  Shapes out;
  for (const auto& s : parameter_specs(cfg)) out[s.name] = s.shape;
  return out;
}

/// Reads a `name<TAB>[d0, d1]<TAB>dtype<TAB>numel` key list (comment lines skipped).
Shapes read_key_list(const std::filesystem::path& path) {
  Shapes out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string name, shape;
    std::getline(row, name, '\t');
    std::getline(row, shape, '\t');
    std::vector<int64_t> dims;
    std::string digits;
    for (const char ch : shape) {
      if (std::isdigit(static_cast<unsigned char>(ch))) {
        digits += ch;
      } else if (!digits.empty()) {
        dims.push_back(std::stoll(digits));
        digits.clear();
      }
    }
    out[name] = dims;
  }
  return out;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// open_clip v2.32.0 src/open_clip/model_configs/coca_ViT-B-32.json (facts, verbatim values).
const char* kOpenClipB32Json = R"({
  "embed_dim": 512,
  "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32,
                 "attentional_pool": true, "attn_pooler_heads": 8, "output_tokens": true},
  "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 512, "heads": 8,
               "layers": 12, "embed_cls": true, "output_tokens": true},
  "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 512, "heads": 8,
                     "layers": 12, "attn_pooler_heads": 8},
  "custom_text": true
})";

// open_clip v2.32.0 coca_ViT-L-14.json.
const char* kOpenClipL14Json = R"({
  "embed_dim": 768,
  "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14,
                 "attentional_pool": true, "attn_pooler_heads": 8, "output_tokens": true},
  "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 768, "heads": 12,
               "layers": 12, "embed_cls": true, "output_tokens": true},
  "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 768, "heads": 12,
                     "layers": 12, "attn_pooler_heads": 12},
  "custom_text": true
})";

/// A small config of the given layout and pooler mode.
CoCaConfig small_config(const std::string& layout, const std::string& mode) {
  CoCaConfig c = preset("coca_tiny");
  c.layout = layout;
  c.pooler.mode = mode;
  c.text.context_length = 8;
  return c;
}

class CoCaTest : public SeededTest {};

TEST_F(CoCaTest, OpenClipB32PresetMatchesReferenceKeys) {
  const auto cfg = preset("open_clip_coca_vit_b_32");
  const auto counts = count_parameters(parameter_specs(cfg));
  EXPECT_EQ(counts.total, 253560065);
  EXPECT_EQ(counts.tensors, 629);
  COCA_REQUIRE_REFERENCE();
  const auto want = read_key_list(reference_dir() / "open_clip_coca_ViT-B-32.keys.txt");
  ASSERT_EQ(want.size(), 629u);
  CoCa model(cfg);  // ~1 GB of fp32 weights
  EXPECT_EQ(module_shapes(model), want);
}

TEST_F(CoCaTest, OpenClipJsonGivesThePresets) {
  const auto b32 = io::config_from_open_clip_json(kOpenClipB32Json, "coca_ViT-B-32.json");
  const auto want = preset("open_clip_coca_vit_b_32");
  EXPECT_EQ(config::to_yaml(b32).substr(config::to_yaml(b32).find("layout")),
            config::to_yaml(want).substr(config::to_yaml(want).find("layout")));
  const auto l14 = io::config_from_open_clip_json(kOpenClipL14Json, "coca_ViT-L-14.json");
  const auto want_l14 = preset("open_clip_coca_vit_l_14");
  EXPECT_EQ(config::to_yaml(l14).substr(config::to_yaml(l14).find("layout")),
            config::to_yaml(want_l14).substr(config::to_yaml(want_l14).find("layout")));
}

TEST_F(CoCaTest, OpenClipJsonRejectsUnsupportedFields) {
  try {
    io::config_from_open_clip_json(
        R"({"embed_dim": 64, "quick_gelu": true, "vision_cfg": {"attentional_pool": true},
            "text_cfg": {"width": 64, "embed_cls": false}, "multimodal_cfg": {"width": 64}})",
        "bad.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string all = e.what() + std::string(" ") + [&] {
      std::string s;
      for (const auto& l : e.lines()) s += l + "\n";
      return s;
    }();
    EXPECT_NE(all.find("bad.json: 'quick_gelu'"), std::string::npos) << all;
    EXPECT_NE(all.find("text_cfg.embed_cls"), std::string::npos) << all;
  }
}

TEST_F(CoCaTest, TinyReferenceConfigMatchesReferenceKeys) {
  COCA_REQUIRE_REFERENCE();
  const auto dir = reference_dir() / "open_clip_tiny";
  const auto manifest = nlohmann::json::parse(read_text(dir / "coca_tiny_s0.manifest.json"));
  const auto cfg = io::config_from_open_clip_json(manifest.at("config").dump(), "tiny.json");
  CoCa model(cfg);
  EXPECT_EQ(module_shapes(model), read_key_list(dir / "coca_tiny_s0.keys.txt"));
  const auto counts = count_parameters(parameter_specs(cfg));
  EXPECT_EQ(counts.total, manifest.at("n_params").get<int64_t>());
  EXPECT_EQ(counts.tensors, manifest.at("n_state_dict_tensors").get<int64_t>());
}

TEST_F(CoCaTest, AnalyticParameterListEqualsModule) {
  std::vector<CoCaConfig> configs = {preset("coca_tiny"), preset("coca_demo"),
                                     small_config("paper", "parallel"),
                                     small_config("paper", "single"),
                                     small_config("open_clip", "single")};
  auto tied = small_config("paper", "cascade");
  tied.multimodal.tie_embeddings = true;
  tied.vision.class_token = true;
  tied.vision.patch_bias = false;
  tied.vision.width = 48;  // != text width: unpacked pooler projections
  tied.vision.heads = 4;
  configs.push_back(tied);
  auto conv = preset("coca_demo");
  conv.vision.stem = "conv";
  configs.push_back(conv);
  for (const auto& cfg : configs) {
    CoCa model(cfg);
    EXPECT_EQ(module_shapes(model), spec_shapes(cfg)) << cfg.name << " " << cfg.pooler.mode;
    int64_t n = 0;
    for (const auto& p : model->parameters()) n += p.numel();
    EXPECT_EQ(count_parameters(parameter_specs(cfg)).total, n);
  }
}

TEST_F(CoCaTest, PresetCountsMatchPaperTable1) {
  auto within = [](double got, double want, double tol) { return std::abs(got - want) <= tol * want; };
  const auto base = count_parameters(parameter_specs(preset("coca_base")));
  EXPECT_TRUE(within(base.paper_count(), 383e6, 0.01)) << base.paper_count();
  EXPECT_TRUE(within(base.image_encoder, 86e6, 0.01)) << base.image_encoder;
  EXPECT_TRUE(within(base.paper_count() - base.image_encoder, 297e6, 0.01));
  const auto large = count_parameters(parameter_specs(preset("coca_large")));
  EXPECT_TRUE(within(large.paper_count(), 787e6, 0.01)) << large.paper_count();
  EXPECT_TRUE(within(large.image_encoder, 303e6, 0.01)) << large.image_encoder;
  EXPECT_TRUE(within(large.paper_count() - large.image_encoder, 484e6, 0.01));
  const auto giant = count_parameters(parameter_specs(preset("coca_2b")));
  EXPECT_TRUE(within(giant.paper_count(), 2.1e9, 0.01)) << giant.paper_count();
  // Tab. 1 rounds the parts to 1B and 1.1B.
  EXPECT_TRUE(within(giant.image_encoder, 1.0e9, 0.05)) << giant.image_encoder;
  EXPECT_TRUE(within(giant.paper_count() - giant.image_encoder, 1.1e9, 0.05));
}

TEST_F(CoCaTest, OutputShapesPerPoolerMode) {
  for (const std::string mode : {"cascade", "parallel", "single"}) {
    const auto cfg = small_config("paper", mode);
    CoCa model(cfg);
    const auto images = torch::randn({2, 3, 32, 32});
    const auto text = torch::randint(1, cfg.text.vocab_size, {2, 8}, torch::kLong);
    const auto out = model->forward(images, text);
    const int64_t q = mode == "single" ? cfg.pooler.queries - 1 : cfg.pooler.queries;
    EXPECT_EQ(out.image_tokens.sizes(), (std::vector<int64_t>{2, q, cfg.text.width})) << mode;
    EXPECT_EQ(out.image_latent.sizes(), (std::vector<int64_t>{2, cfg.embed_dim}));
    EXPECT_EQ(out.text_latent.sizes(), (std::vector<int64_t>{2, cfg.embed_dim}));
    EXPECT_EQ(out.text_tokens.sizes(), (std::vector<int64_t>{2, 8, cfg.text.width}));
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 7, cfg.text.vocab_size}));
    EXPECT_EQ(out.logit_scale.dim(), 0);
    EXPECT_NEAR(out.logit_scale.item<double>(), 1.0 / 0.07, 1e-3);
    EXPECT_TENSOR_NEAR(out.image_features.norm(2, -1), torch::ones({2}), 1e-5);
    EXPECT_TENSOR_NEAR(out.text_features.norm(2, -1), torch::ones({2}), 1e-5);
    // The logits come from the decoder over text_tokens[:, :-1].
    EXPECT_TENSOR_NEAR(out.logits, model->decode(out.image_tokens, out.text_tokens.narrow(1, 0, 7)),
                       1e-6);
  }
}

TEST_F(CoCaTest, LogitsAreCausal) {
  for (const std::string layout : {"paper", "open_clip"}) {
    const auto cfg = small_config(layout, layout == "paper" ? "cascade" : "single");
    CoCa model(cfg);
    model->eval();
    const auto images = torch::randn({2, 3, 32, 32});
    const auto text = torch::randint(1, cfg.text.vocab_size, {2, 8}, torch::kLong);
    const auto logits = model->forward(images, text).logits;
    for (int64_t t = 0; t < 6; ++t) {
      auto changed = text.clone();
      changed.narrow(1, t + 1, 8 - t - 1).random_(1, cfg.text.vocab_size);
      const auto other = model->forward(images, changed).logits;
      EXPECT_TENSOR_NEAR(other.narrow(1, 0, t + 1), logits.narrow(1, 0, t + 1), 1e-5)
          << layout << " t=" << t;
      // Later positions do change (so the check above is not vacuous).
      EXPECT_GT((other.narrow(1, t + 1, 6 - t) - logits.narrow(1, t + 1, 6 - t)).abs().max().item<double>(),
                1e-4);
    }
  }
}

TEST_F(CoCaTest, TextEmbeddingIgnoresImageAndPadding) {
  auto cfg = small_config("paper", "cascade");
  CoCa model(cfg);
  const auto text = torch::tensor({{7, 9, 11, 3, 0, 0, 0, 0}, {5, 6, 7, 8, 9, 10, 11, 3}},
                                  torch::kLong);
  const auto a = model->forward(torch::randn({2, 3, 32, 32}), text);
  const auto b = model->forward(torch::randn({2, 3, 32, 32}), text);
  EXPECT_TENSOR_NEAR(a.text_latent, b.text_latent, 0.0);
  EXPECT_GT((a.image_latent - b.image_latent).abs().max().item<double>(), 1e-4);

  // Perturbing the pad token's embedding: the correct mask keeps the [CLS] away from it.
  auto latent_after_pad_change = [&](CoCa& m) {
    const auto before = m->encode_text(text);
    {
      torch::NoGradGuard no_grad;
      // Random, not constant: LayerNorm would remove a constant shift.
      m->text->token_embedding->weight[cfg.text.pad_id].add_(torch::randn({cfg.text.width}));
    }
    const auto after = m->encode_text(text);
    // The pad positions' states did change, so an unchanged latent is not vacuous.
    EXPECT_GT((after.tokens[0][5] - before.tokens[0][5]).abs().max().item<double>(), 1e-3);
    return std::make_pair(before.latent, after.latent);
  };
  const auto [before, after] = latent_after_pad_change(model);
  EXPECT_TENSOR_NEAR(after, before, 1e-6);

  // open_clip's legacy mask lets the [CLS] see the first pad token: row 0 changes, the
  // unpadded row 1 does not.
  cfg.text.legacy_cls_mask = true;
  CoCa legacy(cfg);
  const auto [lb, la] = latent_after_pad_change(legacy);
  EXPECT_GT((la[0] - lb[0]).abs().max().item<double>(), 1e-4);
  EXPECT_TENSOR_NEAR(la[1], lb[1], 1e-6);
}

TEST_F(CoCaTest, TiedEmbeddingsShareStorage) {
  auto cfg = small_config("paper", "cascade");
  cfg.multimodal.tie_embeddings = true;
  CoCa model(cfg);
  EXPECT_FALSE(model->named_parameters().contains("text_decoder.text_projection"));
  EXPECT_TRUE(model->output_projection().is_same(model->text->token_embedding->weight));
  auto copy = std::dynamic_pointer_cast<CoCaImpl>(model->clone());
  EXPECT_TRUE(copy->output_projection().is_same(copy->text->token_embedding->weight));
  EXPECT_NE(copy->output_projection().data_ptr(), model->output_projection().data_ptr());
  // The output projection receives gradient through the embedding: a token that is never
  // input still gets a gradient row from the logits.
  const auto text = torch::randint(1, 10, {2, 8}, torch::kLong);
  model->forward(torch::randn({2, 3, 32, 32}), text).logits.sum().backward();
  const auto grad = model->text->token_embedding->weight.grad();
  EXPECT_GT(grad[cfg.text.vocab_size - 1].abs().sum().item<double>(), 0.0);
}

TEST_F(CoCaTest, InterpolatedPositionsAtAnotherImageSize) {
  const auto cfg = small_config("paper", "cascade");
  CoCa model(cfg);
  const auto tokens = model->visual->forward_features(torch::randn({1, 3, 48, 40}));
  EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{1, 6 * 5, cfg.vision.width}));
  auto out = model->encode_image(torch::randn({1, 3, 48, 40}).requires_grad_(true));
  out.latent.sum().backward();
  EXPECT_TRUE(model->visual->positional_embedding.grad().defined());
}

TEST_F(CoCaTest, CheckpointedModelGivesSameGradients) {
  for (const std::string layout : {"paper", "open_clip"}) {
    auto cfg = small_config(layout, layout == "paper" ? "cascade" : "single");
    CoCa plain(cfg);
    auto ckpt = std::dynamic_pointer_cast<CoCaImpl>(plain->clone());
    ckpt->visual->transformer->checkpoint_activations = true;
    ckpt->text->transformer->checkpoint_activations = true;
    ckpt->text_decoder->config.multimodal.checkpoint_activations = true;
    const auto images = torch::randn({2, 3, 32, 32});
    const auto text = torch::randint(1, cfg.text.vocab_size, {2, 8}, torch::kLong);
    auto loss = [&](CoCaImpl& m) {
      const auto o = m.forward(images, text);
      return o.logits.logsumexp(-1).mean() + (o.image_features * o.text_features).sum();
    };
    loss(*plain).backward();
    loss(*ckpt).backward();
    const auto a = plain->named_parameters();
    const auto b = ckpt->named_parameters();
    for (const auto& p : a) {
      const auto& g = b[p.key()].grad();
      ASSERT_EQ(g.defined(), p.value().grad().defined()) << p.key();
      if (!g.defined()) continue;  // logit_scale is not in this loss
      EXPECT_TENSOR_NEAR(g, p.value().grad(), 1e-6, 1e-4) << layout << " " << p.key();
    }
  }
}

}  // namespace
}  // namespace coca::model

namespace coca::model {
namespace {

TEST(ModelInfoTest, ForwardFlopsMatchHandCount) {
  // 4 patches (4 px / patch 2), width 4, one layer everywhere,
  // MLP 8, Q = 2 cascade queries, T = 3 text tokens, V = 10, E = 4.
  CoCaConfig c;
  c.layout = "paper";
  c.embed_dim = 4;
  c.vision = VisionConfig{};
  c.vision.image_size = 4;
  c.vision.patch_size = 2;
  c.vision.width = 4;
  c.vision.layers = 1;
  c.vision.heads = 1;
  c.vision.mlp_dim = 8;
  c.vision.class_token = false;
  c.text.vocab_size = 10;
  c.text.context_length = 3;
  c.text.width = 4;
  c.text.layers = 1;
  c.text.heads = 1;
  c.text.mlp_dim = 8;
  c.multimodal.layers = 1;
  c.multimodal.heads = 1;
  c.multimodal.mlp_dim = 8;
  c.pooler.mode = "cascade";
  c.pooler.queries = 2;
  c.pooler.heads = 1;
  const auto f = forward_flops(c);
  // Patch embedding 2*4*12*4 = 384; block over N = 4: Q 128 + KV 256 + QK^T/AV 256 +
  // out 128 + MLP 512 = 1280.
  EXPECT_EQ(f.image_encoder, 384 + 1280);
  // Pooler 1 (2 queries over 4 tokens): 64 + 256 + 128 + 64; pooler 2 (1 over 2): 32 + 128 + 32 + 32.
  EXPECT_EQ(f.poolers, 512 + 224);
  // Text tower on T + 1 = 4 positions: one block as above.
  EXPECT_EQ(f.unimodal_decoder, 1280);
  // Decoder on T - 1 = 2 positions: self 320 + cross (2 memory tokens) 320 + MLP 256 +
  // logits 2*2*4*10 = 160.
  EXPECT_EQ(f.multimodal_decoder, 320 + 320 + 256 + 160);
  EXPECT_EQ(f.contrastive_heads, 64);
  EXPECT_EQ(f.total(), 4800);

  // The conv stem at patch 2: one 3x3 stride-2 layer 3 -> 4 channels on the 2x2 output
  // grid (2*4*27*4 = 864), then conv1 1x1 4 -> 4 over 4 patches (2*4*4*4 = 128).
  c.vision.stem = "conv";
  EXPECT_EQ(conv_stem_channels(c.vision), (std::vector<int64_t>{4}));
  EXPECT_EQ(forward_flops(c).image_encoder, 864 + 128 + 1280);
}

TEST(ModelInfoTest, ConvStemChannelsDoubleUpToTheWidth) {
  VisionConfig v;
  v.patch_size = 16;
  v.width = 768;
  EXPECT_TRUE(conv_stem_channels(v).empty());  // the patch stem
  v.stem = "conv";
  EXPECT_EQ(conv_stem_channels(v), (std::vector<int64_t>{96, 192, 384, 768}));
}

// The conv stem against its formula written out with functional ops: each layer
// relu(gamma * (conv(x) - mean) / sqrt(var + 1e-5) + beta), with the batch's mean and
// biased variance over (N, H, W) in training, the running ones in eval; the running
// statistics move by momentum 0.1 towards the batch mean and unbiased variance.
TEST(ConvStemTest, MatchesBatchNormFormulaInTrainAndEval) {
  torch::manual_seed(5);
  auto cfg = config::model_from_yaml(config::preset_yaml("coca_tiny"), "coca_tiny");
  cfg.vision.stem = "conv";
  VisionTransformer vit(cfg);
  vit->to(torch::kDouble);
  {
    torch::NoGradGuard g;  // non-trivial affine parameters
    for (auto& p : vit->named_parameters()) {
      if (p.key().find("norm.") != std::string::npos) p.value().uniform_(0.5, 1.5);
    }
  }
  const auto images = torch::randn({4, 3, 32, 32}, torch::kDouble);
  auto manual = [&](bool training) {
    auto x = images;
    for (const auto& layer : *vit->stem) {
      auto* l = layer->as<StemLayer>();
      x = torch::conv2d(x, l->conv->weight, {}, 2, 1);
      torch::Tensor mean, var;
      if (training) {
        mean = x.mean({0, 2, 3});
        var = x.var({0, 2, 3}, /*unbiased=*/false);
      } else {
        mean = l->norm->running_mean;
        var = l->norm->running_var;
      }
      auto shape = std::vector<int64_t>{1, -1, 1, 1};
      x = (x - mean.view(shape)) / (var.view(shape) + 1e-5).sqrt() * l->norm->weight.view(shape) +
          l->norm->bias.view(shape);
      x = torch::relu(x);
    }
    return torch::conv2d(x, vit->conv1->weight, vit->conv1->bias).flatten(2).transpose(1, 2);
  };
  const auto want_train = manual(true);
  // Expected running statistics after one training forward, from the same conv outputs.
  std::vector<torch::Tensor> want_mean, want_var;
  {
    auto x = images;
    for (const auto& layer : *vit->stem) {
      auto* l = layer->as<StemLayer>();
      const auto y = torch::conv2d(x, l->conv->weight, {}, 2, 1);
      want_mean.push_back(0.1 * y.mean({0, 2, 3}));
      want_var.push_back(0.9 + 0.1 * y.var({0, 2, 3}, /*unbiased=*/true));
      x = l->forward(x);
    }
  }
  // Reset the statistics touched by the loop above, then run the module.
  for (const auto& layer : *vit->stem) layer->as<StemLayer>()->norm->reset_running_stats();
  vit->train();
  const auto got_train = vit->embed(images);
  EXPECT_TRUE(torch::allclose(got_train, want_train, 1e-10, 1e-10));
  for (size_t i = 0; i < vit->stem->size(); ++i) {
    auto* l = (*vit->stem)[i]->as<StemLayer>();
    EXPECT_TRUE(torch::allclose(l->norm->running_mean, want_mean[i], 1e-10, 1e-10)) << i;
    EXPECT_TRUE(torch::allclose(l->norm->running_var, want_var[i], 1e-10, 1e-10)) << i;
  }
  // Training mode mixes rows (row 0 changes with row 1); eval mode does not.
  auto other = images.clone();
  other[1].mul_(3);
  EXPECT_FALSE(torch::allclose(vit->embed(other)[0], got_train[0], 1e-6, 1e-6));
  vit->eval();
  const auto got_eval = vit->embed(images);
  EXPECT_TRUE(torch::allclose(got_eval, manual(false), 1e-10, 1e-10));
  EXPECT_TRUE(torch::allclose(vit->embed(other)[0], got_eval[0], 1e-12, 1e-12));
}

}  // namespace
}  // namespace coca::model

namespace coca::model {
namespace {

TEST(ModelInfoTest, CommandPrintsCounts) {
  const auto base = coca::testing::run_coca("model-info --model coca_base");
  EXPECT_EQ(base.exit_code, 0) << base.err;
  EXPECT_NE(base.out.find("paper Tab. 1 count: 382,851,840"), std::string::npos) << base.out;
  coca::testing::TempDir dir;
  coca::testing::write_file(dir / "coca_ViT-B-32.json", kOpenClipB32Json);
  const auto b32 =
      coca::testing::run_coca("model-info --open-clip-config " + (dir / "coca_ViT-B-32.json").string());
  EXPECT_EQ(b32.exit_code, 0) << b32.err;
  EXPECT_NE(b32.out.find("253,560,065"), std::string::npos) << b32.out;
  const auto neither = coca::testing::run_coca("model-info");
  EXPECT_EQ(neither.exit_code, 2);
}

}  // namespace
}  // namespace coca::model

namespace coca::model {
namespace {

/// The error lines of a config with these overrides, joined; a config that loads fails.
std::string config_errors(const std::vector<std::string>& overrides) {
  const auto lines = coca::testing::error_lines({}, overrides);
  EXPECT_FALSE(lines.empty()) << "expected ConfigError";
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

TEST(ModelConfigTest, ConvStemNeedsPowerOfTwoPatch) {
  const auto all = config_errors({"model.vision.stem=conv", "model.vision.patch_size=6",
                                  "model.vision.image_size=36"});
  EXPECT_NE(all.find("model.vision.stem 'conv' needs a power-of-two model.vision.patch_size"),
            std::string::npos) << all;
  EXPECT_NE(all.find("got 6"), std::string::npos) << all;
  EXPECT_THROW(config::load_run_config({}, {"model.vision.stem=convnext"}), ConfigError);
}

TEST(ModelConfigTest, OpenClipLayoutNeedsEmbedDimEqualTextWidth) {
  const auto all = config_errors({"model.layout=open_clip", "model.pooler.mode=single",
                                  "model.embed_dim=256"});
  EXPECT_NE(all.find("model.embed_dim (256) must equal model.text.width (768)"), std::string::npos)
      << all;
}

}  // namespace
}  // namespace coca::model
