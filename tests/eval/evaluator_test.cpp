// evaluate() on a tiny random model with synthetic sets; `coca caption`, `coca embed`,
// `coca eval` and the trainer's eval hook on a checkpoint made here by a 2-step run.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coca/config/config_io.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "coca/data/synthetic.h"
#include "coca/data/tokenizer.h"
#include "coca/eval/evaluator.h"
#include "coca/eval/inference.h"
#include "coca/io/safetensors.h"
#include "coca/train/trainer.h"
#include "test_utils.h"

namespace coca::eval {
namespace {

using coca::testing::run_coca;
using coca::testing::TempDir;
using coca::testing::write_file;
namespace fs = std::filesystem;

/// A SentencePiece model trained on synthetic captions, a 2-step run with evaluation
/// every step, and three image files (two synthetic PNGs, one that is not an image).
class EvalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path d = dir_->path();
    coca::testing::train_synthetic_tokenizer(d, 256, 3);

    write_file(d / "run.yaml", fmt::format(R"(
include: ['preset:coca_tiny']
model: {{text: {{vocab_size: 96, context_length: 16}}}}
data:
  sources:
    - {{name: captions, type: synthetic, samples: 64, seed: 3, image_size: 32}}
  tokenizer: {{type: sentencepiece, path: '{}'}}
  workers: 1
optim: {{name: adafactor, lr: 2.0e-3}}
train: {{steps: 2, batch_size: 8, run_dir: '{}', seed: 11, eval_every: 1}}
eval:
  retrieval: {{type: synthetic, samples: 6, seed: 9, image_size: 32}}
  max_samples: 6
  batch_size: 4
)",
                                           (d / "spm.model").string(), (d / "run").string()));
    train::Trainer trainer(config::load_run_config({(d / "run.yaml").string()}, {}));
    ASSERT_EQ(trainer.fit(), 0);

    for (int i = 0; i < 2; ++i) {
      const auto bytes = data::encode_image(data::make_synthetic_scene(5, i, 40).image, "png");
      fs::create_directories(d / "images");
      std::ofstream g((d / "images" / fmt::format("img{}.png", i)).string(), std::ios::binary);
      g.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    write_file(d / "bad.png", "this is not an image\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path dir() { return dir_->path(); }
  static fs::path checkpoints() { return dir() / "run" / "checkpoints"; }
  static std::string img(int i) { return (dir() / "images" / fmt::format("img{}.png", i)).string(); }

  static TempDir* dir_;
};
TempDir* EvalTest::dir_ = nullptr;

config::RunConfig synthetic_eval_config() {
  config::RunConfig cfg;
  cfg.model = config::model_from_yaml(config::preset_yaml("coca_tiny"), "coca_tiny");
  cfg.model.text.vocab_size = 96;
  for (auto* s : {&cfg.eval.zero_shot, &cfg.eval.retrieval, &cfg.eval.captioning}) {
    s->type = "synthetic";
    s->samples = 20;
    s->seed = 4;
    s->image_size = 32;
  }
  cfg.eval.zero_shot.samples = 60;  // zero-shot keeps only the single-label scenes
  cfg.eval.templates = "";
  cfg.eval.max_samples = 10;
  cfg.eval.batch_size = 4;
  cfg.eval.generate.max_len = 6;
  return cfg;
}

/// How many of the first `samples` synthetic scenes of `seed` carry exactly one label (one
/// shape group): the images zero-shot classification can score, capped at `cap`.
int64_t single_label_scenes(uint64_t seed, int64_t samples, int64_t size, int64_t cap) {
  int64_t n = 0;
  for (int64_t i = 0; i < samples && n < cap; ++i) {
    if (data::make_synthetic_scene(seed, i, size).label_ids.size() == 1) ++n;
  }
  return n;
}

TEST_F(EvalTest, EvaluateRunsEveryTaskWithNumbersInRange) {
  auto cfg = synthetic_eval_config();
  // Fewer templates keep it fast; the file form is exercised too.
  write_file(dir() / "templates.txt", "a photo of a {}.\n{}\n");
  cfg.eval.templates = (dir() / "templates.txt").string();
  const auto tokenizer = data::make_sentencepiece_tokenizer((dir() / "spm.model").string());
  model::CoCa model(cfg.model);
  model->train();
  const auto r = evaluate(model, *tokenizer, cfg);
  EXPECT_TRUE(model->is_training()) << "training mode restored";
  std::vector<std::string> names;
  for (const auto& [k, v] : r.metrics) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"zero_shot_top1", "zero_shot_top5",
                                             "zero_shot_images", "i2t_r1", "i2t_r5", "i2t_r10",
                                             "t2i_r1", "t2i_r5", "t2i_r10", "retrieval_images",
                                             "retrieval_texts", "retrieval_distinct_texts",
                                             "bleu1", "bleu4", "cider",
                                             "captioning_images"}));
  EXPECT_EQ(r.at("zero_shot_images"), single_label_scenes(4, 60, 32, 10));
  EXPECT_EQ(r.at("retrieval_images"), 10);
  EXPECT_EQ(r.at("retrieval_texts"), 10);  // one caption per synthetic image
  EXPECT_GE(r.at("retrieval_distinct_texts"), 1);
  EXPECT_LE(r.at("retrieval_distinct_texts"), 10);
  EXPECT_EQ(r.at("captioning_images"), 10);
  EXPECT_LE(r.at("zero_shot_top1"), r.at("zero_shot_top5"));
  EXPECT_LE(r.at("i2t_r1"), r.at("i2t_r5"));
  EXPECT_LE(r.at("i2t_r5"), r.at("i2t_r10"));
  EXPECT_DOUBLE_EQ(r.at("i2t_r10"), 1.0);  // 10 images, 10 captions: top 10 holds all
  EXPECT_DOUBLE_EQ(r.at("t2i_r10"), 1.0);
  for (const auto& [k, v] : r.metrics) {
    EXPECT_TRUE(std::isfinite(v)) << k;
    EXPECT_GE(v, 0.0) << k;
    if (k != "cider" && k.find("images") == std::string::npos && k.find("texts") == std::string::npos) {
      EXPECT_LE(v, 1.0) << k;
    }
  }
  ASSERT_EQ(r.examples.size(), 5u);
  EXPECT_FALSE(r.examples[0].reference.empty());
  const auto json = nlohmann::json::parse(results_json(r));
  EXPECT_DOUBLE_EQ(json.at("metrics").at("cider").get<double>(), r.at("cider"));
  EXPECT_NE(format_results(r).find("zero_shot_top1"), std::string::npos);
}

TEST_F(EvalTest, OnlyConfiguredTasksRun) {
  auto cfg = synthetic_eval_config();
  cfg.eval.retrieval.type = "";
  cfg.eval.captioning.type = "";
  cfg.eval.templates = (dir() / "templates.txt").string();
  write_file(dir() / "templates.txt", "{}\n");
  const auto tokenizer = data::make_sentencepiece_tokenizer((dir() / "spm.model").string());
  model::CoCa model(cfg.model);
  const auto r = evaluate(model, *tokenizer, cfg);
  ASSERT_EQ(r.metrics.size(), 3u);
  EXPECT_EQ(r.at("zero_shot_images"), single_label_scenes(4, 60, 32, 10));
}

TEST_F(EvalTest, TrainerLogsEvalRecords) {
  std::ifstream in((dir() / "run" / "metrics.jsonl").string());
  int evals = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("kind") != "eval") continue;
    ++evals;
    EXPECT_EQ(j.at("step").get<int64_t>(), evals);
    EXPECT_EQ(j.at("retrieval_images").get<double>(), 6);
    EXPECT_GE(j.at("i2t_r1").get<double>(), 0.0);
  }
  EXPECT_EQ(evals, 2);  // eval_every 1 over 2 steps (the last step is not evaluated twice)
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> split_tab(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, '\t');) out.push_back(f);
  return out;
}

TEST_F(EvalTest, CaptionCommandPrintsOneLinePerImage) {
  const auto tokenizer = data::make_sentencepiece_tokenizer((dir() / "spm.model").string());
  const std::string base = "caption --checkpoint '" + checkpoints().string() + "' '" + img(0) +
                           "' '" + img(1) + "' --ids --max-len 6";
  const auto cached = run_coca(base);
  ASSERT_EQ(cached.exit_code, 0) << cached.err;
  const auto lines = lines_of(cached.out);
  ASSERT_EQ(lines.size(), 2u) << cached.out;
  for (int i = 0; i < 2; ++i) {
    const auto fields = split_tab(lines[i]);
    ASSERT_GE(fields.size(), 2u) << lines[i];
    EXPECT_EQ(fields[0], img(i));
    std::vector<int64_t> ids;
    if (fields.size() == 3) {
      std::istringstream in(fields[2]);
      for (int64_t id; in >> id;) ids.push_back(id);
    }
    EXPECT_LE(ids.size(), 6u);
    for (auto id : ids) EXPECT_NE(id, tokenizer->eos_id());
    EXPECT_EQ(fields[1], tokenizer->decode(ids));
  }
  const auto uncached = run_coca(base + " --no-kv-cache");
  ASSERT_EQ(uncached.exit_code, 0) << uncached.err;
  EXPECT_EQ(uncached.out, cached.out);
  const auto beams = run_coca(base + " --beams 3");
  ASSERT_EQ(beams.exit_code, 0) << beams.err;
  EXPECT_EQ(lines_of(beams.out).size(), 2u);
  const auto sampled = run_coca(base + " --top-k 5 --seed 3");
  ASSERT_EQ(sampled.exit_code, 0) << sampled.err;
  EXPECT_EQ(run_coca(base + " --top-k 5 --seed 3").out, sampled.out);
}

TEST_F(EvalTest, CaptionCommandErrors) {
  const auto bad = run_coca("caption --checkpoint '" + checkpoints().string() + "' '" + img(0) +
                            "' '" + (dir() / "bad.png").string() + "'");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(lines_of(bad.err).size(), 1u) << bad.err;
  EXPECT_NE(bad.err.find("bad.png"), std::string::npos) << bad.err;
  EXPECT_TRUE(bad.out.empty());
  const auto missing = run_coca("caption --checkpoint '" + checkpoints().string() + "' '" +
                                (dir() / "nope.png").string() + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.png"), std::string::npos) << missing.err;
  EXPECT_EQ(run_coca("caption '" + img(0) + "'").exit_code, 2);  // no --checkpoint
  EXPECT_EQ(run_coca("caption --checkpoint '" + checkpoints().string() + "' '" + img(0) +
                     "' --beams 2 --top-k 3")
                .exit_code,
            2);
}

TEST_F(EvalTest, EmbedCommandWritesNormalisedEmbeddings) {
  write_file(dir() / "texts.txt", "a red circle\n\na blue square\ntwo green stars\n");
  const auto out = dir() / "emb.safetensors";
  const auto r = run_coca("embed --checkpoint '" + checkpoints().string() + "' --images '" +
                          (dir() / "images").string() + "' --texts '" +
                          (dir() / "texts.txt").string() + "' --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto file = io::read_safetensors(out.string());
  const auto& images = file.tensors.at("image_embeddings");
  const auto& texts = file.tensors.at("text_embeddings");
  ASSERT_EQ(images.sizes().vec(), (std::vector<int64_t>{2, 32}));
  ASSERT_EQ(texts.sizes().vec(), (std::vector<int64_t>{3, 32}));
  EXPECT_TENSOR_NEAR(images.norm(2, 1), torch::ones({2}), 1e-5);
  EXPECT_TENSOR_NEAR(texts.norm(2, 1), torch::ones({3}), 1e-5);
  EXPECT_EQ(nlohmann::json::parse(file.metadata.at("image_paths")),
            nlohmann::json(std::vector<std::string>{img(0), img(1)}));
  EXPECT_EQ(nlohmann::json::parse(file.metadata.at("texts")),
            nlohmann::json(std::vector<std::string>{"a red circle", "a blue square",
                                                    "two green stars"}));
  // The same numbers as the model computes in-process on the same inputs.
  auto ckpt = train::load_checkpoint_model(checkpoints());
  const data::EvalTransform transform(ckpt.config.data.eval_transform, 32);
  torch::NoGradGuard no_grad;
  const auto latent = ckpt.model->encode_image(load_image_file(img(1), transform).unsqueeze(0)).latent;
  EXPECT_TENSOR_NEAR(images[1], (latent / latent.norm()).squeeze(0), 1e-5);
  const auto tokenizer = data::make_sentencepiece_tokenizer((dir() / "spm.model").string());
  const auto t = ckpt.model->encode_text(tokenizer->encode_batch({"two green stars"}, 16)).latent;
  EXPECT_TENSOR_NEAR(texts[2], (t / t.norm()).squeeze(0), 1e-5);

  EXPECT_EQ(run_coca("embed --checkpoint '" + checkpoints().string() + "' --out x.safetensors")
                .exit_code,
            2);
}

TEST_F(EvalTest, EvalCommandPrintsTableAndWritesJson) {
  const auto out = dir() / "results.json";
  const auto r = run_coca("eval --checkpoint '" + checkpoints().string() +
                          "' --set \"eval.retrieval.type=''\" --set eval.captioning.type=synthetic "
                          "--set eval.captioning.samples=4 --set eval.captioning.image_size=32 "
                          "--set eval.generate.max_len=5 --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cider"), std::string::npos) << r.out;
  const auto json = nlohmann::json::parse(coca::testing::read_file(out));
  EXPECT_EQ(json.at("metrics").at("captioning_images").get<double>(), 4);
  EXPECT_EQ(json.at("metrics").count("i2t_r1"), 0u);
  EXPECT_EQ(run_coca("eval --checkpoint '" + checkpoints().string() +
                     "' --set \"eval.retrieval.type=''\"")
                .exit_code,
            2);  // nothing configured
}

}  // namespace
}  // namespace coca::eval
