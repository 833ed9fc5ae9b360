// Attention, masks, activation checkpointing and positional-embedding interpolation,
// checked against LibTorch's own nn::MultiheadAttention and hand-worked values.
#include <torch/torch.h>

#include <limits>

#include "coca/model/attention.h"
#include "coca/model/text_decoder.h"
#include "coca/model/transformer_block.h"
#include "coca/model/vision_transformer.h"
#include "test_utils.h"

namespace coca::model {
namespace {

using coca::testing::SeededTest;

class AttentionTest : public SeededTest {};

TEST_F(AttentionTest, LayerNormNormalisesBf16InputsInFloat32) {
  auto ln = make_layer_norm(8);
  {
    torch::NoGradGuard no_grad;
    ln->weight.uniform_(0.5, 1.5);
    ln->bias.uniform_(-1, 1);
  }
  const auto x = torch::randn({3, 5, 8}).to(torch::kBFloat16);
  const auto y = ln(x);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  // LayerNorm's formula on the bf16 values, written out in float64.
  const auto xd = x.to(torch::kDouble);
  const auto mean = xd.mean(-1, true);
  const auto var = (xd - mean).pow(2).mean(-1, true);
  const auto want = (xd - mean) / (var + 1e-5).sqrt() * ln->weight.to(torch::kDouble) +
                    ln->bias.to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(y.to(torch::kDouble), want, 1e-5, 1e-5));
  // Same-dtype inputs take LibTorch's LayerNorm unchanged.
  const auto xf = torch::randn({4, 8});
  EXPECT_TRUE(torch::equal(ln(xf), torch::layer_norm(xf, {8}, ln->weight, ln->bias, 1e-5)));
}

/// Copies our parameters into LibTorch's MultiheadAttention (same layout and names).
torch::nn::MultiheadAttention torch_twin(MultiheadAttention& ours, int64_t kdim) {
  auto opts = torch::nn::MultiheadAttentionOptions(ours->options.embed_dim, ours->options.heads);
  if (kdim != ours->options.embed_dim) opts.kdim(kdim).vdim(kdim);
  torch::nn::MultiheadAttention ref(opts);
  torch::NoGradGuard no_grad;
  auto ref_params = ref->named_parameters();
  for (const auto& p : ours->named_parameters()) {
    auto* target = ref_params.find(p.key());
    EXPECT_NE(target, nullptr) << "LibTorch's MultiheadAttention has no parameter " << p.key();
    if (target) target->copy_(p.value());
  }
  EXPECT_EQ(ref_params.size(), ours->named_parameters().size());
  return ref;
}

TEST_F(AttentionTest, SelfAttentionMatchesTorchMultiheadAttention) {
  MultiheadAttention attn(AttentionOptions(16, 4));
  // Random biases so the packed bias slicing is exercised.
  {
    torch::NoGradGuard no_grad;
    attn->in_proj_bias.normal_();
    attn->out_proj->bias.normal_();
  }
  auto ref = torch_twin(attn, 16);
  const auto x = torch::randn({3, 5, 16});
  const auto mask = causal_mask(5, x.options());
  auto padding = torch::zeros({3, 5}, torch::kBool);
  padding.index_put_({1, 4}, true);
  padding.index_put_({2, 3}, true);
  const auto got = attn->forward(x, x, x, mask, padding);
  const auto want = std::get<0>(ref->forward(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1),
                                             padding, /*need_weights=*/false, mask))
                        .transpose(0, 1);
  EXPECT_TENSOR_NEAR(got, want, 1e-5, 1e-5);
}

TEST_F(AttentionTest, CrossAttentionWithOtherKeyWidthMatchesTorch) {
  AttentionOptions opts(16, 2);
  opts.kdim = 24;
  opts.vdim = 24;
  MultiheadAttention attn(opts);
  EXPECT_FALSE(attn->packed());
  const auto names = attn->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight",
                                             "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  {
    torch::NoGradGuard no_grad;
    attn->in_proj_bias.normal_();
  }
  auto ref = torch_twin(attn, 24);
  const auto q = torch::randn({2, 3, 16});
  const auto kv = torch::randn({2, 7, 24});
  const auto got = attn->forward(q, kv, kv);
  const auto want = std::get<0>(ref->forward(q.transpose(0, 1), kv.transpose(0, 1),
                                             kv.transpose(0, 1), {}, false))
                        .transpose(0, 1);
  EXPECT_TENSOR_NEAR(got, want, 1e-5, 1e-5);
}

TEST_F(AttentionTest, PackedCrossAttentionMatchesTorch) {
  MultiheadAttention attn(AttentionOptions(8, 2));
  {
    torch::NoGradGuard no_grad;
    attn->in_proj_bias.normal_();
  }
  auto ref = torch_twin(attn, 8);
  const auto q = torch::randn({2, 4, 8});
  const auto k = torch::randn({2, 6, 8});
  const auto v = torch::randn({2, 6, 8});
  const auto want = [&](const torch::Tensor& key, const torch::Tensor& value) {
    return std::get<0>(ref->forward(q.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),
                                    {}, false))
        .transpose(0, 1);
  };
  EXPECT_TENSOR_NEAR(attn->forward(q, k, k), want(k, k), 1e-5, 1e-5);  // fused K/V matmul
  EXPECT_TENSOR_NEAR(attn->forward(q, k, v), want(k, v), 1e-5, 1e-5);  // separate K, V
}

TEST_F(AttentionTest, BoolMaskEqualsAdditiveMask) {
  MultiheadAttention attn(AttentionOptions(8, 2));
  const auto x = torch::randn({2, 5, 8});
  const auto drop = torch::ones({5, 5}, torch::kBool).triu(1);
  const auto additive = torch::zeros({5, 5}).masked_fill(drop, -std::numeric_limits<float>::infinity());
  EXPECT_TENSOR_NEAR(attn->forward(x, x, x, drop), attn->forward(x, x, x, additive), 0.0);
}

TEST_F(AttentionTest, TextMaskMatchesHandWorkedRows) {
  const double inf = std::numeric_limits<double>::infinity();
  const auto text = torch::tensor({5, 6, 0, 0}, torch::kLong).view({1, 4});
  // Correct: the [CLS] row (4) sees the real tokens 0, 1 and itself.
  const auto correct = build_text_attention_mask(text, 0, /*legacy=*/false);
  EXPECT_TENSOR_NEAR(correct[0][4], torch::tensor({0.0, 0.0, -inf, -inf, 0.0}).to(torch::kFloat), 0.0);
  // open_clip's: F.pad(text != pad, (1, 0, T, 0), value=True) -> keys 0, 1, 2 visible,
  // key 3 (text[2] is pad) and key 4 (itself, text[3] is pad) not.
  const auto legacy = build_text_attention_mask(text, 0, /*legacy=*/true);
  EXPECT_TENSOR_NEAR(legacy[0][4], torch::tensor({0.0, 0.0, 0.0, -inf, -inf}).to(torch::kFloat), 0.0);
  // Other rows: causal only.
  const auto causal = causal_mask(5, torch::TensorOptions().dtype(torch::kFloat));
  EXPECT_TENSOR_NEAR(correct[0].narrow(0, 0, 4), causal.narrow(0, 0, 4), 0.0);
  EXPECT_TENSOR_NEAR(legacy[0].narrow(0, 0, 4), causal.narrow(0, 0, 4), 0.0);
  EXPECT_EQ(causal[1][2].item<float>(), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(causal[2][1].item<float>(), 0.0f);
}

TEST_F(AttentionTest, CheckpointedTransformerGivesSameGradients) {
  Transformer plain(BlockOptions{16, 2, 32, false}, 3, /*checkpoint_activations=*/false);
  auto checkpointed = std::dynamic_pointer_cast<TransformerImpl>(plain->clone());
  checkpointed->checkpoint_activations = true;
  const auto x0 = torch::randn({2, 6, 16});
  const auto mask = causal_mask(6, x0.options());
  auto run = [&](TransformerImpl& model) {
    model.zero_grad();
    auto x = x0.clone().requires_grad_(true);
    auto y = model.forward(x, mask);
    (y * y).sum().backward();
    std::vector<torch::Tensor> grads{x.grad()};
    for (const auto& p : model.parameters()) grads.push_back(p.grad().clone());
    return grads;
  };
  const auto want = run(*plain);
  const auto got = run(*checkpointed);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TENSOR_NEAR(got[i], want[i], 1e-6, 1e-5) << i;
  // Parameters only (input needs no grad): the output must still reach them.
  plain->zero_grad();
  checkpointed->zero_grad();
  plain->forward(x0, mask).sum().backward();
  checkpointed->forward(x0, mask).sum().backward();
  const auto a = plain->parameters();
  const auto b = checkpointed->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TENSOR_NEAR(b[i].grad(), a[i].grad(), 1e-6, 1e-5);
}

TEST_F(AttentionTest, PositionalEmbeddingInterpolation) {
  const auto pos = torch::randn({1 + 16, 8});
  // Same grid: bicubic at scale 1 reproduces the input.
  EXPECT_TENSOR_NEAR(interpolate_positional_embedding(pos, 1, 4, 4, 4, 4), pos, 1e-5);
  // Another grid: prefix row kept, new row count, and a constant field stays constant
  // (interpolation weights sum to one).
  const auto bigger = interpolate_positional_embedding(pos, 1, 4, 4, 6, 5);
  EXPECT_EQ(bigger.sizes(), (std::vector<int64_t>{1 + 30, 8}));
  EXPECT_TENSOR_NEAR(bigger[0], pos[0], 0.0);
  const auto constant = torch::full({16, 3}, 0.7);
  EXPECT_TENSOR_NEAR(interpolate_positional_embedding(constant, 0, 4, 4, 7, 7),
                     torch::full({49, 3}, 0.7), 1e-5);
  EXPECT_TENSOR_NEAR(interpolate_positional_embedding(constant, 0, 4, 4, 2, 2),
                     torch::full({4, 3}, 0.7), 1e-5);
}

}  // namespace
}  // namespace coca::model
