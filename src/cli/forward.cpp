// `coca forward`: one forward pass of a checkpoint or a safetensors model on a batch read
// from safetensors (input.images, input.text), all outputs and losses written back.
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/io/interop.h"
#include "coca/io/safetensors.h"
#include "coca/train/trainer.h"

namespace coca::cli {

Subcommand add_forward(CLI::App& root) {
  struct Args {
    std::string checkpoint, weights, model_config, batch, out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "forward", "run one forward pass on a safetensors batch and write every output and loss");
  app->add_option("--checkpoint", args->checkpoint, "checkpoint folder (or run folder)")
      ->type_name("DIR");
  app->add_option("--weights", args->weights, "model weights (.safetensors)")->type_name("FILE");
  app->add_option("--model-config", args->model_config,
                  "model YAML (model: section) or open_clip model-config JSON")
      ->type_name("FILE");
  app->add_option("--batch", args->batch, "safetensors with input.images [B,3,H,W] float, "
                  "input.text [B,L] int64")->required()->type_name("FILE");
  app->add_option("--out", args->out, "output safetensors")->required()->type_name("FILE");

  Subcommand cmd;
  cmd.app = app;
  cmd.run = [args] {
    const bool from_checkpoint = !args->checkpoint.empty();
    const bool from_weights = !args->weights.empty() || !args->model_config.empty();
    if (from_checkpoint == from_weights ||
        (from_weights && (args->weights.empty() || args->model_config.empty()))) {
      throw UsageError("forward: give either --checkpoint DIR or both --weights and --model-config");
    }
    model::CoCa model{nullptr};
    if (from_checkpoint) {
      model = train::load_checkpoint_model(args->checkpoint).model;
    } else {
      model = io::load_model_from_safetensors(io::read_model_config_file(args->model_config),
                                              args->weights);
    }
    const auto batch = io::read_safetensors(args->batch);
    for (const char* key : {"input.images", "input.text"}) {
      if (!batch.tensors.count(key)) {
        throw IoError(args->batch, std::string("missing tensor '") + key + "'");
      }
    }
    const auto outputs =
        io::forward_outputs(model, batch.tensors.at("input.images"), batch.tensors.at("input.text"));
    io::write_safetensors(args->out, outputs);
    log::info("[forward] wrote {} tensors to {}", outputs.size(), args->out);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli
