// `coca import`: open_clip weights (safetensors) + model-config JSON -> a native checkpoint.
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/io/interop.h"

namespace coca::cli {

Subcommand add_import(CLI::App& root) {
  struct Args {
    std::string format, weights, model_config, tokenizer, out;
    int64_t image_size = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "import", "make a native checkpoint folder from open_clip CoCa weights");
  app->add_option("--format", args->format, "open_clip")
      ->required()->check(CLI::IsMember({"open_clip"}));
  app->add_option("--weights", args->weights, "open_clip state dict (.safetensors)")
      ->required()->type_name("FILE");
  app->add_option("--model-config", args->model_config, "open_clip model-config JSON")
      ->required()->type_name("FILE");
  app->add_option("--tokenizer", args->tokenizer,
                  "clip_bpe:VOCAB.txt.gz or sentencepiece:MODEL (recorded in config.yaml)")
      ->type_name("TYPE:PATH");
  app->add_option("--image-size", args->image_size,
                  "import at this input resolution (positional embedding resized)")
      ->check(CLI::PositiveNumber);
  app->add_option("--out", args->out, "checkpoint root folder")->required()->type_name("DIR");

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [] { return int64_t{1}; };
  cmd.run = [args] {
    io::ImportOptions options;
    options.weights = args->weights;
    options.model_config = args->model_config;
    options.image_size = args->image_size;
    if (!args->tokenizer.empty()) {
      const auto colon = args->tokenizer.find(':');
      const std::string type = args->tokenizer.substr(0, colon);
      if (colon == std::string::npos || (type != "clip_bpe" && type != "sentencepiece") ||
          colon + 1 == args->tokenizer.size()) {
        throw UsageError("import: --tokenizer expects clip_bpe:PATH or sentencepiece:PATH, got '" +
                         args->tokenizer + "'");
      }
      options.tokenizer_type = type;
      options.tokenizer_path = args->tokenizer.substr(colon + 1);
    }
    io::import_open_clip(options, args->out);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
