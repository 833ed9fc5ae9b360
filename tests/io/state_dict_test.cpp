#include "coca/io/state_dict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coca/common/error.h"
#include "coca/io/safetensors.h"
#include "test_utils.h"

namespace coca::io {
namespace {

using coca::testing::TempDir;

struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
    fc = register_module("fc", torch::nn::Linear(4, 3));
    register_buffer("mask", torch::ones({2, 2}));
  }
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Block);

/// A small tree: own parameters registered around submodules, a 0-d parameter, a
/// bias-free Linear, a Sequential and BatchNorm (which has a 0-d int64 buffer).
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    logit_scale = register_parameter("logit_scale", torch::tensor(2.5));
    mlp = register_module(
        "mlp", torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::GELU(),
                                     torch::nn::Linear(torch::nn::LinearOptions(8, 4).bias(false))));
    block = register_module("block", Block());
    query = register_parameter("query", torch::randn({2, 4}));
    norm = register_module("norm", torch::nn::BatchNorm1d(3));
    register_buffer("pos", torch::arange(3.0));
  }
  torch::Tensor logit_scale, query;
  torch::nn::Sequential mlp{nullptr};
  Block block{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(Tiny);

std::vector<std::string> names_of(const NamedTensors& t) {
  std::vector<std::string> out;
  for (const auto& [name, _] : t) out.push_back(name);
  return out;
}

std::map<std::string, torch::Tensor> as_map(const NamedTensors& t) {
  return {t.begin(), t.end()};
}

std::map<std::string, torch::Tensor> cloned(const NamedTensors& t) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, tensor] : t) out[name] = tensor.clone();
  return out;
}

std::string load_error(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& src,
                       const LoadOptions& options = {}) {
  try {
    load_state_dict(m, src, options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(StateDictTest, ParametersThenBuffersInRegistrationOrder) {
  Tiny m;
  const std::vector<std::string> want = {
      // parameters: own first (in registration order), then children in order
      "logit_scale", "query", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "block.ln.weight",
      "block.ln.bias", "block.fc.weight", "block.fc.bias", "norm.weight", "norm.bias",
      // buffers, same walk
      "pos", "block.mask", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"};
  const NamedTensors sd = state_dict(*m);
  EXPECT_EQ(names_of(sd), want);
  const auto map = as_map(sd);
  EXPECT_EQ(map.at("logit_scale").dim(), 0);
  EXPECT_EQ(map.at("norm.num_batches_tracked").dim(), 0);
  EXPECT_EQ(map.at("norm.num_batches_tracked").scalar_type(), torch::kLong);
  EXPECT_EQ(map.at("mlp.2.weight").sizes(), (std::vector<int64_t>{4, 8}));
}

TEST(StateDictTest, TensorsAliasTheModule) {
  Tiny m;
  const auto map = as_map(state_dict(*m));
  EXPECT_EQ(map.at("block.fc.weight").data_ptr(), m->block->fc->weight.data_ptr());
  EXPECT_FALSE(map.at("query").requires_grad());  // detached views
  EXPECT_TRUE(m->query.requires_grad());
}

TEST(StateDictTest, LoadCopiesEverythingIncludingZeroDimAndBuffers) {
  torch::manual_seed(1);
  Tiny a;
  a->norm->running_mean.fill_(0.25);
  a->norm->num_batches_tracked.fill_(7);
  torch::manual_seed(2);
  Tiny b;
  b->logit_scale.data().fill_(-1.0);
  ASSERT_FALSE(torch::equal(a->query, b->query));

  const LoadReport r = load_state_dict(*b, cloned(state_dict(*a)));
  EXPECT_EQ(r.loaded.size(), state_dict(*a).size());
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.unexpected.empty());
  EXPECT_TRUE(r.cast.empty());
  EXPECT_TRUE(r.problems.empty());
  const auto want = as_map(state_dict(*a));
  for (const auto& [name, t] : state_dict(*b)) EXPECT_TRUE(torch::equal(t, want.at(name))) << name;
  EXPECT_EQ(b->logit_scale.item<double>(), 2.5);
  EXPECT_EQ(b->norm->num_batches_tracked.item<int64_t>(), 7);
  // Still trainable leaves: the copy ran without autograd.
  EXPECT_TRUE(b->query.requires_grad());
  EXPECT_TRUE(b->query.is_leaf());
  EXPECT_FALSE(b->query.grad_fn());
}

TEST(StateDictTest, RoundTripsThroughSafetensors) {
  TempDir dir;
  const std::string path = (dir / "tiny.safetensors").string();
  torch::manual_seed(3);
  Tiny a;
  write_safetensors(path, state_dict(*a));
  torch::manual_seed(4);
  Tiny b;
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.names, names_of(state_dict(*a)));
  load_state_dict(*b, f.tensors, {true, true, path});
  const auto x = torch::randn({5, 4});
  EXPECT_TRUE(torch::equal(a->mlp->forward(x), b->mlp->forward(x)));
  EXPECT_TRUE(torch::equal(a->block->fc(x), b->block->fc(x)));
}

TEST(StateDictTest, CastsDtypesOnlyWhenAllowed) {
  Tiny m;
  auto src = cloned(state_dict(*m));
  src["query"] = torch::tensor({{1.0, 2.0, 3.0, 4.0}, {5.0, 6.0, 7.0, 8.0}}, torch::kDouble);
  src["block.fc.bias"] = torch::tensor({0.5, -0.5, 1.5}).to(torch::kHalf);
  const LoadReport r = load_state_dict(*m, src);
  EXPECT_EQ(r.cast, (std::vector<std::string>{"query", "block.fc.bias"}));
  EXPECT_EQ(m->query.scalar_type(), torch::kFloat);  // the module keeps its dtype
  EXPECT_TRUE(torch::equal(m->query, torch::arange(1, 9, torch::kFloat).reshape({2, 4})));
  EXPECT_TRUE(torch::equal(m->block->fc->bias, torch::tensor({0.5f, -0.5f, 1.5f})));

  const std::string e = load_error(*m, src, {true, false, ""});
  EXPECT_NE(e.find("dtype mismatch for 'query': expected Float, found Double"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("dtype mismatch for 'block.fc.bias': expected Float, found Half"),
            std::string::npos)
      << e;
}

TEST(StateDictTest, ReportsEveryProblemOneLineEachAndChangesNothing) {
  Tiny m;
  const auto before = cloned(state_dict(*m));
  auto src = cloned(state_dict(*m));
  for (auto& [name, t] : src) t.fill_(9);  // would be visible if anything were copied
  src.erase("logit_scale");
  src.erase("norm.running_var");
  src["block.fc.weight"] = torch::zeros({4, 3});
  src["visual.proj"] = torch::zeros({2, 5});
  const std::string e = load_error(*m, src);
  const std::vector<std::string> lines = {
      "shape mismatch for 'block.fc.weight': expected [3, 4], found [4, 3]",
      "missing key 'logit_scale' (expected shape [])",
      "missing key 'norm.running_var' (expected shape [3])",
      "unexpected key 'visual.proj' (shape [2, 5])"};
  for (const auto& line : lines) EXPECT_NE(e.find("\n" + line), std::string::npos) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 4) << e;
  for (const auto& [name, t] : state_dict(*m)) EXPECT_TRUE(torch::equal(t, before.at(name))) << name;

  // Not strict: missing/unexpected are only reported, the shape mismatch still fails.
  const std::string lenient = load_error(*m, src, {false, true, ""});
  EXPECT_NE(lenient.find("shape mismatch for 'block.fc.weight'"), std::string::npos);
  EXPECT_EQ(lenient.find("missing key"), std::string::npos) << lenient;

  src["block.fc.weight"] = torch::zeros({3, 4});
  const LoadReport r = load_state_dict(*m, src, {false, true, ""});
  EXPECT_EQ(r.missing, (std::vector<std::string>{"logit_scale", "norm.running_var"}));
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"visual.proj"});
  EXPECT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(m->logit_scale.item<float>(), 2.5f);  // missing: unchanged
  EXPECT_EQ(m->query.sum().item<float>(), 9.0f * 8);
}

TEST(StateDictTest, ErrorsNameTheSourceFile) {
  Tiny m;
  try {
    load_state_dict(*m, {}, {true, true, "w.safetensors"});
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(e.file(), "w.safetensors");
    EXPECT_NE(std::string(e.what()).find("missing key 'query' (expected shape [2, 4])"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace coca::io
