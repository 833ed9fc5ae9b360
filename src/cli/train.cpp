// `coca train`: pretrain or finetune from YAML configs.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/train/finetune.h"
#include "coca/train/trainer.h"

namespace coca::cli {

Subcommand add_train(CLI::App& root) {
  struct Args {
    ConfigArgs config;
    bool print_config = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("train", "pretrain or finetune (task: in the config)");
  args->config.add_to(*app);
  app->add_flag("--print-config", args->print_config, "print the resolved config as YAML and exit");
  app->add_flag_function(
      "--resume",
      [args](int64_t) { args->config.overrides.push_back("train.resume=auto"); },
      "continue from the newest complete checkpoint of the run (same as --set train.resume=auto)");

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [args] {
    return config::load_run_config(args->config.files, args->config.overrides).runtime.threads;
  };
  cmd.run = [args] {
    const config::RunConfig cfg = config::load_run_config(args->config.files, args->config.overrides);
    if (args->print_config) {
      std::cout << config::to_yaml(cfg);
      return 0;
    }
    if (cfg.train.task == "classify") {
      train::ClassifyTrainer trainer(cfg);
      return trainer.fit();
    }
    train::Trainer trainer(cfg);
    return trainer.fit();
  };
  return cmd;
}

}  // namespace coca::cli
