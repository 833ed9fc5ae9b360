// `coca tokenizer train`: trains a SentencePiece model (pad=0, unk=1, bos=2, eos=3) on
// text files with one sentence per line.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "coca/data/tokenizer.h"

namespace coca::cli {

Subcommand add_tokenizer(CLI::App& root) {
  struct Args {
    data::SentencePieceTrainOptions train;
    int64_t threads = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("tokenizer", "train a SentencePiece tokenizer");
  app->require_subcommand(1);
  CLI::App* train = app->add_subcommand(
      "train", "train a SentencePiece model; writes PREFIX.model and PREFIX.vocab");
  train->add_option("--text", args->train.input_files, "text files, one sentence per line")
      ->required()
      ->check(CLI::ExistingFile);
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
