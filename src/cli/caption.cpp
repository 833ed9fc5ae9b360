// `coca caption` (captions for image files) and `coca embed` (normalised image/text
// embeddings to safetensors), both from a checkpoint.
#include <fmt/format.h>
#include <torch/types.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/data/image_transform.h"
#include "coca/data/tokenizer.h"
#include "coca/eval/inference.h"
#include "coca/train/trainer.h"

namespace coca::cli {
namespace {

/// The eval transform at the model's image size (or the config's eval_transform size).
data::EvalTransform eval_transform(const config::RunConfig& cfg) {
  const auto& t = cfg.data.eval_transform;
  return data::EvalTransform(t, t.image_size > 0 ? t.image_size : cfg.model.vision.image_size);
}

torch::Tensor load_images(const std::vector<std::string>& paths,
                          const data::EvalTransform& transform) {
  std::vector<torch::Tensor> images;
  for (const auto& p : paths) images.push_back(eval::load_image_file(p, transform));
  return torch::stack(images);
}

}  // namespace

Subcommand add_caption(CLI::App& root) {
  struct Args {
    std::string checkpoint;
    std::vector<std::string> images;
    eval::GenerateConfig gen;
    uint64_t seed = 0;
    bool no_kv_cache = false;
    bool ids = false;
    int64_t batch = 16;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("caption", "generate captions for image files");
  app->add_option("--checkpoint", args->checkpoint,
                  "checkpoint folder, or a run's checkpoints folder (newest)")
      ->required();
  app->add_option("images", args->images, "image files")->required();
  auto* beams = app->add_option("--beams", args->gen.beams, "beam width (1 = greedy)")
                    ->check(CLI::PositiveNumber);
  auto* max_len = app->add_option("--max-len", args->gen.max_len, "maximum generated tokens")
                      ->check(CLI::PositiveNumber);
  auto* min_len = app->add_option("--min-len", args->gen.min_len, "minimum generated tokens")
                      ->check(CLI::NonNegativeNumber);
  auto* top_k = app->add_option("--top-k", args->gen.top_k, "sample from the k most likely tokens")
                    ->check(CLI::NonNegativeNumber);
  auto* top_p = app->add_option("--top-p", args->gen.top_p, "nucleus sampling mass (1 = off)")
                    ->check(CLI::Range(0.0, 1.0));
  auto* temperature = app->add_option("--temperature", args->gen.temperature, "sampling temperature")
                          ->check(CLI::PositiveNumber);
  app->add_option("--seed", args->seed, "sampling seed");
  app->add_option("--batch", args->batch, "images per generation batch")->check(CLI::PositiveNumber);
  app->add_flag("--no-kv-cache", args->no_kv_cache, "recompute the whole prefix every step");
  app->add_flag("--ids", args->ids, "also print the token ids");

  Subcommand cmd;
  cmd.app = app;
  cmd.run = [args, beams, max_len, min_len, top_k, top_p, temperature] {
    auto ckpt = train::load_checkpoint_model(args->checkpoint);
    // The checkpoint's eval.generate, with the flags given on top.
    eval::GenerateConfig gen = ckpt.config.eval.generate;
    if (beams->count()) gen.beams = args->gen.beams;
    if (max_len->count()) gen.max_len = args->gen.max_len;
    if (min_len->count()) gen.min_len = args->gen.min_len;
    if (top_k->count()) gen.top_k = args->gen.top_k;
    if (top_p->count()) gen.top_p = args->gen.top_p;
    if (temperature->count()) gen.temperature = args->gen.temperature;
    if (args->no_kv_cache) gen.kv_cache = false;
    if (gen.beams > 1 && (gen.top_k > 0 || gen.top_p < 1.0)) {
      throw UsageError("caption: --beams > 1 and sampling (--top-k/--top-p) exclude each other");
    }
    const auto tokenizer = data::make_tokenizer(ckpt.config.data.tokenizer, "data.tokenizer");
    const auto images = load_images(args->images, eval_transform(ckpt.config));
    const auto captions =
        eval::caption_images(ckpt.model, *tokenizer, images, gen, args->seed, args->batch);
    for (size_t i = 0; i < captions.size(); ++i) {
      std::cout << args->images[i] << "\t" << captions[i].text;
      if (args->ids) std::cout << "\t" << fmt::format("{}", fmt::join(captions[i].ids, " "));
      std::cout << "\n";
    }
    return 0;
  };
  return cmd;
}

Subcommand add_embed(CLI::App& root) {
  struct Args {
    std::string checkpoint;
    std::vector<std::string> images;
    std::string texts;
    std::string out;
    int64_t batch = 64;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "embed", "L2-normalised image and/or text embeddings to a safetensors file");
  app->add_option("--checkpoint", args->checkpoint,
                  "checkpoint folder, or a run's checkpoints folder (newest)")
      ->required();
  app->add_option("--images", args->images, "image files or folders (sorted by path)");
  app->add_option("--texts", args->texts, "text file, one text per line (empty lines skipped)");
  app->add_option("--out", args->out, "output .safetensors file")->required();
  app->add_option("--batch", args->batch, "batch size")->check(CLI::PositiveNumber);

  Subcommand cmd;
  cmd.app = app;
  cmd.run = [args] {
    if (args->images.empty() && args->texts.empty()) {
      throw UsageError("embed: give --images and/or --texts");
    }
    auto ckpt = train::load_checkpoint_model(args->checkpoint);
    torch::Tensor image_emb, text_emb;
    std::vector<std::string> paths, texts;
    if (!args->images.empty()) {
      paths = eval::list_image_files(args->images);
      if (paths.empty()) throw UsageError("embed: --images names no image files");
      image_emb = eval::embed_images(ckpt.model, load_images(paths, eval_transform(ckpt.config)),
                                     args->batch);
    }
    if (!args->texts.empty()) {
      std::ifstream in(args->texts);
      if (!in) throw IoError(args->texts, "cannot open the text file");
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) texts.push_back(line);
      }
      const auto tokenizer = data::make_tokenizer(ckpt.config.data.tokenizer, "data.tokenizer");
      text_emb = eval::embed_texts(ckpt.model, *tokenizer, texts, args->batch);
    }
    eval::write_embeddings(args->out, image_emb, paths, text_emb, texts);
    std::cout << fmt::format("[embed] {} images, {} texts -> {}\n", paths.size(), texts.size(),
                             args->out);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
