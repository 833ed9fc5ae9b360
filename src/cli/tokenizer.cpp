// `coca tokenizer train`: trains a SentencePiece model (pad=0, unk=1, bos=2, eos=3) on
// text files with one sentence per line.
#include <fmt/format.h>

#include <filesystem>

#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/data/text_corpus.h"
#include "coca/data/tokenizer.h"

namespace coca::cli {

Subcommand add_tokenizer(CLI::App& root) {
  struct Args {
    data::SentencePieceTrainOptions train;
    int64_t threads = 0;
    ConfigArgs data;              // --data: run configs whose data.sources give the text
    int64_t max_samples = 0;      // per source, 0 = all
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("tokenizer", "train a SentencePiece tokenizer");
  app->require_subcommand(1);
  CLI::App* train = app->add_subcommand(
      "train", "train a SentencePiece model; writes PREFIX.model and PREFIX.vocab");
  auto* text = train->add_option("--text", args->train.input_files,
                                 "text files, one sentence per line")
                    ->check(CLI::ExistingFile);
  auto* data = train->add_option("--data", args->data.files,
                                 "run config(s) whose data.sources give the text: captions, and "
                                 "labels put into prompt templates (repeatable, later wins)")
                   ->type_name("CONFIG");
  train->add_option("--set", args->data.overrides, "override a key of the --data config")
      ->type_name("KEY=VALUE");
  train->add_option("--max-samples", args->max_samples,
                    "samples read per source with --data (0 = all)")
      ->check(CLI::NonNegativeNumber);
  text->excludes(data);
  data->excludes(text);
  train->add_option("--vocab-size", args->train.vocab_size, "pieces, including pad/unk/bos/eos")
      ->required()
      ->check(CLI::Range(int64_t{5}, int64_t{1} << 30));
  train->add_option("--out", args->train.model_prefix, "output prefix")->required();
  train->add_option("--model-type", args->train.model_type, "unigram or bpe")
      ->check(CLI::IsMember({"unigram", "bpe"}))
      ->capture_default_str();
  train->add_option("--character-coverage", args->train.character_coverage,
                    "share of characters covered by single pieces")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  train->add_option("--sentences", args->train.input_sentence_size,
                    "sentences sampled for training (0 = all)")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--threads", args->threads, "trainer threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  train->add_flag("--verbose", [args](int64_t) { args->train.quiet = false; },
                  "show SentencePiece's training log");

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [args] { return args->threads; };
  cmd.run = [args] {
    auto options = args->train;
    if (args->data.files.empty() && options.input_files.empty()) {
      throw UsageError("tokenizer train: give --text FILE or --data CONFIG");
    }
    if (!args->data.files.empty()) {
      const auto cfg = config::load_run_config(args->data.files, args->data.overrides);
      const std::string corpus = options.model_prefix + ".corpus.txt";
      std::filesystem::remove(corpus);
      const auto stats = data::write_text_corpus(cfg.data.sources, cfg.data.label_text,
                                                 cfg.data.seed, args->max_samples, corpus);
      std::cout << fmt::format("[tokenizer] {} lines of text from {} samples -> {}\n",
                               stats.lines, stats.samples, corpus);
      options.input_files = {corpus};
    }
    options.threads = args->threads > 0
                          ? args->threads
                          : static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
    const int64_t vocab = data::train_sentencepiece(options);
    std::cout << fmt::format("[tokenizer] wrote {0}.model and {0}.vocab: vocab size {1}\n",
                             options.model_prefix, vocab);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
