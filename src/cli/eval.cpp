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
#include "coca/train/finetune.h"
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
      "eval", "zero-shot, retrieval and captioning metrics of a checkpoint, classifier top-1 of a classify-task one (eval.* keys)");
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
    // A classify-task checkpoint: its classifier head (EMA weights when saved) on
    // eval.classification, next to whatever CoCa evaluations are configured.
    const bool classify =
        cfg.train.task == "classify" && !cfg.eval.classification.type.empty();
    if (!eval::eval_configured(cfg.eval) && !classify) {
      throw UsageError(
          "eval: nothing to evaluate; set eval.zero_shot, eval.retrieval or eval.captioning "
          "(e.g. --set eval.captioning.type=synthetic), or eval.classification for a "
          "classify-task checkpoint");
    }
    eval::EvalResults results;
    if (classify) {
      auto classifier = train::load_classifier_checkpoint(ckpt.dir);
      const auto r = train::evaluate_classifier(classifier.model, classifier.head, cfg);
      results.metrics.emplace_back("classify_top1", r.top1);
      results.metrics.emplace_back("classify_top5", r.top5);
      results.metrics.emplace_back("classify_images", static_cast<double>(r.images));
      // The CoCa evaluations below use the model with the classifier's EMA weights.
      ckpt.model = classifier.model;
    }
    if (eval::eval_configured(cfg.eval)) {
      const auto tokenizer = data::make_tokenizer(cfg.data.tokenizer, "data.tokenizer");
      const auto coca_results = eval::evaluate(ckpt.model, *tokenizer, cfg);
      results.metrics.insert(results.metrics.end(), coca_results.metrics.begin(),
                             coca_results.metrics.end());
      results.examples = coca_results.examples;
    }
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
