// Parity with open_clip v2.32.0: the tiny CoCa exported from open_clip with its inputs,
// outputs, losses and gradients (../shared/reference/open_clip_tiny). Independent truth:
// every number was produced by open_clip itself.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "coca/io/open_clip.h"
#include "coca/io/safetensors.h"
#include "coca/io/state_dict.h"
#include "coca/model/coca.h"
#include "coca/train/losses.h"
#include "test_utils.h"

namespace coca {
namespace {

struct Fixture {
  model::CoCa model{nullptr};
  std::map<std::string, torch::Tensor> io;
  nlohmann::json manifest;
};

Fixture load_fixture() {
  const auto dir = testing::reference_dir() / "open_clip_tiny";
  Fixture f;
  f.manifest = nlohmann::json::parse(testing::read_file(dir / "coca_tiny_s0.manifest.json"));
  auto cfg = io::config_from_open_clip_json(f.manifest["config"].dump(), "manifest.json");
  f.model = model::CoCa(cfg);
  auto weights = io::read_safetensors((dir / "coca_tiny_s0.weights.safetensors").string());
  io::load_state_dict(*f.model, weights.tensors);
  f.io = io::read_safetensors((dir / "coca_tiny_s0.io.safetensors").string()).tensors;
  return f;
}

TEST(OpenClipParityTest, ForwardOutputsMatchOpenClip) {
  COCA_REQUIRE_REFERENCE();
  auto f = load_fixture();
  f.model->eval();
  torch::NoGradGuard no_grad;
  const auto out = f.model->forward(f.io.at("input.images"), f.io.at("input.text"));
  EXPECT_TENSOR_NEAR(out.image_latent, f.io.at("fwd.image_latent"), 1e-5);
  EXPECT_TENSOR_NEAR(out.text_latent, f.io.at("fwd.text_latent"), 1e-5);
  EXPECT_TENSOR_NEAR(out.image_tokens, f.io.at("fwd.image_embs"), 1e-5);
  EXPECT_TENSOR_NEAR(out.text_tokens, f.io.at("fwd.text_embs"), 1e-5);
  EXPECT_TENSOR_NEAR(out.image_features, f.io.at("fwd.image_features"), 1e-5);
  EXPECT_TENSOR_NEAR(out.text_features, f.io.at("fwd.text_features"), 1e-5);
  EXPECT_TENSOR_NEAR(out.logits, f.io.at("fwd.logits"), 1e-5);
  EXPECT_TENSOR_NEAR(out.logit_scale, f.io.at("fwd.logit_scale"), 1e-5);
  const auto per_image = out.logit_scale * out.image_features.matmul(out.text_features.t());
  EXPECT_TENSOR_NEAR(per_image, f.io.at("fwd.logits_per_image"), 1e-4);
  EXPECT_TENSOR_NEAR(per_image.t(), f.io.at("fwd.logits_per_text"), 1e-4);
}

TEST(OpenClipParityTest, LossesAndGradientsMatchOpenClip) {
  COCA_REQUIRE_REFERENCE();
  auto f = load_fixture();
  f.model->train();
  const auto text = f.io.at("input.text");
  const auto out = f.model->forward(f.io.at("input.images"), text);
  train::CoCaLoss loss;  // open_clip.CoCaLoss(caption_loss_weight=2, clip_loss_weight=1, pad_id=0)
  const auto parts = loss(out.image_features, out.text_features, out.logit_scale, out.logits, text);
  EXPECT_TENSOR_NEAR(parts.contrastive, f.io.at("loss.contrastive"), 1e-5);
  EXPECT_TENSOR_NEAR(parts.caption, f.io.at("loss.caption"), 1e-5);
  EXPECT_TENSOR_NEAR(parts.total, f.io.at("loss.total"), 1e-5);
  parts.total.backward();
  int64_t compared = 0;
  for (const auto& p : f.model->named_parameters()) {
    const auto it = f.io.find("grad." + p.key());
    if (it == f.io.end()) continue;
    ++compared;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    // Both sides are fp32 with different summation orders: gradients of magnitude ~1
    // (text.cls_emb, positional rows) differ by ~1e-5, so the bound is 1e-5 absolute
    // plus 1e-5 relative. The fp64 test below checks them at 1e-5 absolute.
    EXPECT_TENSOR_NEAR(p.value().grad(), it->second, 1e-5, 1e-5) << p.key();
  }
  EXPECT_EQ(compared, f.manifest["n_state_dict_tensors"].get<int64_t>());
}

TEST(OpenClipParityTest, Float64GradientsMatchOpenClipWithinItsFp32Noise) {
  COCA_REQUIRE_REFERENCE();
  auto f = load_fixture();
  f.model->to(torch::kDouble);
  f.model->train();
  const auto text = f.io.at("input.text");
  const auto out = f.model->forward(f.io.at("input.images").to(torch::kDouble), text);
  train::CoCaLoss loss;
  const auto parts = loss(out.image_features, out.text_features, out.logit_scale, out.logits, text);
  EXPECT_TENSOR_NEAR(parts.total, f.io.at("ref64.loss.total"), 1e-9);
  parts.total.backward();
  for (const auto& p : f.model->named_parameters()) {
    EXPECT_TENSOR_NEAR(p.value().grad(), f.io.at("grad." + p.key()), 1e-5) << p.key();
  }
}

}  // namespace
}  // namespace coca
