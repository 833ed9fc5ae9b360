// `coca eval`: zero-shot classification, retrieval and captioning of a checkpoint, on
// the sets its config's `eval` section (overridden by --config/--set) names.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/data/tokenizer.h"
#include "coca/eval/evaluator.h"
#include "coca/train/trainer.h"

namespace coca::cli {

Subcommand add_eval(CLI::App& root) {
  struct Args {
    std::string checkpoint;
    ConfigArgs config;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "eval", "zero-shot, retrieval and captioning metrics of a checkpoint (eval.* keys)");
  app->add_option("--checkpoint", args->checkpoint,
                  "checkpoint folder, or a run's checkpoints folder (newest)")
      ->required();
  args->config.add_to(*app);
  app->add_option("--out", args->out,
                  "results JSON (default: <checkpoint>/eval_results.json)");

  Subcommand cmd;
  cmd.app = app;
  cmd.run = [args] {
    auto ckpt = train::load_checkpoint_model(args->checkpoint);
    // The checkpoint's config, then the given files and overrides on top.
    config::RunConfig cfg = ckpt.config;
    for (const auto& f : args->config.files) config::apply_file(cfg, f);
    for (const auto& o : args->config.overrides) config::apply_override(cfg, o);
    config::validate(cfg);
    if (!eval::eval_configured(cfg.eval)) {
      throw UsageError(
          "eval: nothing to evaluate; set eval.zero_shot, eval.retrieval or eval.captioning "
          "(e.g. --set eval.captioning.type=synthetic)");
    }
    const auto tokenizer = data::make_tokenizer(cfg.data.tokenizer, "data.tokenizer");
    const auto results = eval::evaluate(ckpt.model, *tokenizer, cfg);
    std::cout << eval::format_results(results);
    const std::string out =
        args->out.empty() ? (ckpt.dir / "eval_results.json").string() : args->out;
    std::ofstream file(out);
    file << eval::results_json(results) << "\n";
    if (!file) throw IoError(out, "cannot write the results");
    std::cout << "[eval] results written to " << out << "\n";
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
