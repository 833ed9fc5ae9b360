// `coca export`: a checkpoint as an open_clip folder or as our pickle-free safetensors folder.
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/io/interop.h"
#include "coca/train/trainer.h"

namespace coca::cli {

Subcommand add_export(CLI::App& root) {
  struct Args {
    std::string checkpoint, format, out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "export", "write a checkpoint as open_clip weights + config, or as a safetensors folder");
  app->add_option("--checkpoint", args->checkpoint, "checkpoint folder (or run folder)")
      ->required()->type_name("DIR");
  app->add_option("--format", args->format, "open_clip | safetensors")
      ->required()->check(CLI::IsMember({"open_clip", "safetensors"}));
  app->add_option("--out", args->out, "output folder")->required()->type_name("DIR");

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [] { return int64_t{1}; };
  cmd.run = [args] {
    auto loaded = train::load_checkpoint_model(args->checkpoint);
    const auto& tokenizer = loaded.config.data.tokenizer.path;
    if (args->format == "open_clip") {
      io::export_open_clip(loaded.model, tokenizer, args->out);
    } else {
      io::export_safetensors(loaded.model, tokenizer, args->out);
    }
    log::info("[export] {} -> {} ({})", loaded.dir.string(), args->out, args->format);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
