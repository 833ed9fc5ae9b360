// coca forward / export / import against the open_clip v2.32.0 tiny CoCa fixture
// (../shared/reference/open_clip_tiny): every reference number was produced by open_clip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "coca/config/config_io.h"
#include "coca/io/interop.h"
#include "coca/io/open_clip.h"
#include "coca/io/safetensors.h"
#include "coca/model/vision_transformer.h"
#include "coca/train/checkpoint.h"
#include "coca/train/train_state.h"
#include "coca/train/trainer.h"
#include "test_utils.h"

namespace coca {
namespace {
namespace fs = std::filesystem;

fs::path fixture_dir() { return testing::reference_dir() / "open_clip_tiny"; }
fs::path reference_weights() { return fixture_dir() / "coca_tiny_s0.weights.safetensors"; }
fs::path reference_io() { return fixture_dir() / "coca_tiny_s0.io.safetensors"; }
fs::path vocab() {
  return testing::reference_dir() / "clip_bpe" / "bpe_simple_vocab_16e6.txt.gz";
}

/// The fixture's open_clip model config written as a standalone JSON file.
fs::path write_model_json(const testing::TempDir& tmp) {
  const auto manifest =
      nlohmann::json::parse(testing::read_file(fixture_dir() / "coca_tiny_s0.manifest.json"));
  const auto path = tmp / "coca_tiny.json";
  std::ofstream(path) << manifest["config"].dump(2);
  return path;
}

/// Every fwd./loss. tensor of the reference io file matches `out_file` within 1e-5.
void expect_reference_outputs(const fs::path& out_file) {
  const auto ref = io::read_safetensors(reference_io().string()).tensors;
  const auto got = io::read_safetensors(out_file.string()).tensors;
  int compared = 0;
  for (const auto& [name, want] : ref) {
    if (name.rfind("fwd.", 0) != 0 && name.rfind("loss.", 0) != 0) continue;
    ASSERT_TRUE(got.count(name)) << name;
    ++compared;
    if (want.scalar_type() == torch::kLong) {
      EXPECT_TRUE(torch::equal(got.at(name), want)) << name;
    } else {
      // logits_per_* are products of a scale ~14 with features: 1e-5 relative on top.
      EXPECT_TENSOR_NEAR(got.at(name), want, 1e-5, 1e-5) << name;
    }
  }
  EXPECT_EQ(compared, 14);
}

std::string import_args(const fs::path& json, const fs::path& out) {
  return "import --format open_clip --weights " + reference_weights().string() +
         " --model-config " + json.string() + " --tokenizer clip_bpe:" + vocab().string() +
         " --out " + out.string();
}

TEST(InteropTest, ForwardFromWeightsReproducesOpenClip) {
  COCA_REQUIRE_REFERENCE();
  testing::TempDir tmp;
  const auto json = write_model_json(tmp);
  const auto r = testing::run_coca("forward --weights " + reference_weights().string() +
                                   " --model-config " + json.string() + " --batch " +
                                   reference_io().string() + " --out " + (tmp / "out.st").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_reference_outputs(tmp / "out.st");
}

TEST(InteropTest, ImportThenForwardAndOpenClipExportRoundTrip) {
  COCA_REQUIRE_REFERENCE();
  testing::TempDir tmp;
  const auto json = write_model_json(tmp);
  auto r = testing::run_coca(import_args(json, tmp / "ckpt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The checkpoint is a native one: load_checkpoint_model reads it.
  const auto loaded = train::load_checkpoint_model(tmp / "ckpt");
  EXPECT_EQ(loaded.model->config.layout, "open_clip");
  EXPECT_TRUE(loaded.model->config.text.legacy_cls_mask);
  EXPECT_EQ(loaded.config.data.tokenizer.type, "clip_bpe");

  r = testing::run_coca("forward --checkpoint " + (tmp / "ckpt").string() + " --batch " +
                        reference_io().string() + " --out " + (tmp / "out.st").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_reference_outputs(tmp / "out.st");

  r = testing::run_coca("export --checkpoint " + (tmp / "ckpt").string() +
                        " --format open_clip --out " + (tmp / "oc").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ref = io::read_safetensors(reference_weights().string());
  const auto got = io::read_safetensors((tmp / "oc" / "open_clip_model.safetensors").string());
  EXPECT_EQ(got.names.size(), ref.names.size());
  for (const auto& [name, want] : ref.tensors) {
    ASSERT_TRUE(got.tensors.count(name)) << name;
    const auto& t = got.tensors.at(name);
    EXPECT_EQ(t.sizes(), want.sizes()) << name;
    EXPECT_EQ(t.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::equal(t, want)) << name;  // bit-identical values
  }
  EXPECT_TRUE(fs::exists(tmp / "oc" / vocab().filename()));

  // The exported config reads back into the same model config.
  const auto cfg = loaded.model->config;
  const auto back = io::config_from_open_clip_json(
      testing::read_file(tmp / "oc" / "open_clip_config.json"), cfg.name + ".json");
  EXPECT_EQ(config::to_yaml(back), config::to_yaml(cfg));
  const auto exported = nlohmann::json::parse(testing::read_file(tmp / "oc" / "open_clip_config.json"));
  const auto original = nlohmann::json::parse(testing::read_file(json));
  for (const char* section : {"vision_cfg", "text_cfg", "multimodal_cfg"}) {
    for (const auto& [key, value] : original[section].items()) {
      EXPECT_EQ(exported[section][key], value) << section << "." << key;
    }
  }
  EXPECT_EQ(exported["embed_dim"], original["embed_dim"]);
}

TEST(InteropTest, SafetensorsExportGivesIdenticalForward) {
  COCA_REQUIRE_REFERENCE();
  testing::TempDir tmp;
  const auto json = write_model_json(tmp);
  auto r = testing::run_coca(import_args(json, tmp / "ckpt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::run_coca("export --checkpoint " + (tmp / "ckpt").string() +
                        " --format safetensors --out " + (tmp / "st").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto header = io::read_safetensors_header((tmp / "st" / "model.safetensors").string());
  EXPECT_EQ(header.metadata.at("format"), io::kSafetensorsFormat);
  EXPECT_EQ(header.metadata.at("format_version"), "1");
  r = testing::run_coca("forward --checkpoint " + (tmp / "ckpt").string() + " --batch " +
                        reference_io().string() + " --out " + (tmp / "a.st").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::run_coca("forward --weights " + (tmp / "st" / "model.safetensors").string() +
                        " --model-config " + (tmp / "st" / "model.yaml").string() + " --batch " +
                        reference_io().string() + " --out " + (tmp / "b.st").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = io::read_safetensors((tmp / "a.st").string()).tensors;
  const auto b = io::read_safetensors((tmp / "b.st").string()).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

TEST(InteropTest, PaperLayoutRefusesOpenClipExport) {
  testing::TempDir tmp;
  config::RunConfig run;
  config::apply_yaml(run, config::preset_yaml("coca_tiny"), "coca_tiny", "");
  ASSERT_EQ(run.model.layout, "paper");
  model::CoCa model(run.model);
  train::Checkpointer(tmp / "ckpt", 1).save(0, [&](const fs::path& dir) {
    torch::save(model, (dir / "model.pt").string());
    train::TrainState{}.save(dir / "train_state.yaml");
    std::ofstream(dir / "config.yaml") << config::to_yaml(run);
  });
  auto r = testing::run_coca("export --checkpoint " + (tmp / "ckpt").string() +
                             " --format open_clip --out " + (tmp / "oc").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot be exported as open_clip"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("layout is 'paper'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "oc" / "open_clip_model.safetensors"));
  // Our own format takes any layout.
  r = testing::run_coca("export --checkpoint " + (tmp / "ckpt").string() +
                        " --format safetensors --out " + (tmp / "st").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto back = io::read_model_config_file(tmp / "st" / "model.yaml");
  EXPECT_EQ(config::to_yaml(back), config::to_yaml(run.model));
}

TEST(InteropTest, ImportRejectsMalformedInputs) {
  COCA_REQUIRE_REFERENCE();
  testing::TempDir tmp;
  const auto json = write_model_json(tmp);
  auto weights = io::read_safetensors(reference_weights().string());
  auto import_from = [&](const fs::path& w) {
    return testing::run_coca("import --format open_clip --weights " + w.string() +
                             " --model-config " + json.string() + " --out " +
                             (tmp / "ckpt").string());
  };
  auto write_variant = [&](const std::string& file, auto&& edit) {
    auto tensors = weights.tensors;
    edit(tensors);
    io::NamedTensors list(tensors.begin(), tensors.end());
    io::write_safetensors((tmp / file).string(), list);
    return tmp / file;
  };
  // Missing key.
  auto r = import_from(write_variant("missing.st", [](auto& t) { t.erase("visual.proj"); }));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("visual.proj"), std::string::npos) << r.err;
  // Unexpected key.
  r = import_from(write_variant("extra.st", [](auto& t) { t["visual.extra"] = torch::zeros({2}); }));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("visual.extra"), std::string::npos) << r.err;
  // Wrong shape.
  r = import_from(write_variant("shape.st", [](auto& t) {
    t["text.ln_final.weight"] = torch::ones({65});
  }));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("text.ln_final.weight"), std::string::npos) << r.err;
  // Truncated file.
  const auto full = testing::read_file(reference_weights());
  std::ofstream(tmp / "trunc.st", std::ios::binary) << full.substr(0, full.size() - 100);
  r = import_from(tmp / "trunc.st");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("trunc.st"), std::string::npos) << r.err;
  // A PyTorch pickle gets the conversion hint of read_safetensors.
  torch::save(torch::ones({2}), (tmp / "weights.pt").string());
  r = import_from(tmp / "weights.pt");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("safetensors"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "ckpt" / "step_00000000"));
  // Usage error: a missing flag.
  r = testing::run_coca("import --format open_clip --weights " + reference_weights().string() +
                        " --out " + (tmp / "ckpt").string());
  EXPECT_EQ(r.exit_code, 2);
}

TEST(InteropTest, ImportAtAnotherResolutionResizesPositionalEmbedding) {
  COCA_REQUIRE_REFERENCE();
  testing::TempDir tmp;
  const auto json = write_model_json(tmp);
  io::ImportOptions options;
  options.weights = reference_weights();
  options.model_config = json;
  options.image_size = 48;  // 4x4 grid -> 6x6
  const auto dir = io::import_open_clip(options, tmp / "ckpt");
  auto loaded = train::load_checkpoint_model(dir);
  EXPECT_EQ(loaded.model->config.vision.image_size, 48);
  const auto pos = loaded.model->visual->positional_embedding;
  ASSERT_EQ(pos.sizes(), (std::vector<int64_t>{37, 96}));
  const auto ref = io::read_safetensors(reference_weights().string())
                       .tensors.at("visual.positional_embedding");
  EXPECT_TRUE(torch::equal(pos[0], ref[0]));  // the class token's row is kept
  // Wiring: the grid rows are the model's own resize (tested in the model tests).
  EXPECT_TRUE(torch::equal(pos, model::interpolate_positional_embedding(ref, 1, 4, 4, 6, 6)));
  // The imported model runs at the new resolution.
  torch::NoGradGuard no_grad;
  const auto out = loaded.model->forward(torch::randn({1, 3, 48, 48}),
                                         torch::ones({1, 12}, torch::kLong));
  EXPECT_EQ(out.image_features.sizes(), (std::vector<int64_t>{1, 64}));
}

}  // namespace
}  // namespace coca
