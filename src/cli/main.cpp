// The `coca` executable: parses the command line, fixes the thread environment, runs one
// subcommand and turns exceptions into one line and an exit code (0 ok, 2 usage or
// config error, 1 anything else).
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/common/runtime.h"
#include "coca/common/version.h"

namespace {

void print_config_error(const coca::ConfigError& e) {
  for (const auto& line : e.lines()) std::cerr << "error: " << line << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coca: pretrain, finetune, evaluate and export CoCa (arXiv 2205.01917)", "coca"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "print version, git sha, LibTorch, CUDA and NCCL");

  std::vector<coca::cli::Subcommand> commands = {
      coca::cli::add_train(app),
      coca::cli::add_bench(app),
      coca::cli::add_tokenizer(app),
      coca::cli::add_model_info(app),
      coca::cli::add_data(app),
      coca::cli::add_launch(app),
      coca::cli::add_caption(app),
      coca::cli::add_embed(app),
      coca::cli::add_eval(app),
      coca::cli::add_forward(app),
      coca::cli::add_export(app),
      coca::cli::add_import(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n\n";
    const CLI::App* failed = &app;
    for (const auto* sub : app.get_subcommands()) failed = sub;
    std::cerr << failed->help();
    return 2;
  }

  try {
    if (show_version) {
      std::cout << coca::version_text();
      return 0;
    }
    for (auto& command : commands) {
      if (!command.app->parsed()) continue;
      coca::runtime::ensure_thread_environment(argv, command.threads());
      coca::runtime::apply_thread_settings();
      coca::runtime::ignore_broken_pipes();
      return command.run();
    }
    std::cerr << app.help();
    return 2;
  } catch (const coca::ConfigError& e) {
    print_config_error(e);
    return 2;
  } catch (const coca::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
