// Subcommand registration for the `coca` executable. Each subcommand lives in its own
// file, registers its flags on the root app and returns what main needs to run it.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace coca::cli {

struct Subcommand {
  CLI::App* app = nullptr;
  /// Compute threads this invocation wants (0 = all cores); called before the run so
  /// the thread environment can be fixed first. May throw ConfigError.
  std::function<int64_t()> threads = [] { return int64_t{0}; };
  /// Runs the command; returns the exit code.
  std::function<int()> run;
};

/// Flags shared by every command that reads a run config.
struct ConfigArgs {
  std::vector<std::string> files;      ///< --config, later files win
  std::vector<std::string> overrides;  ///< --set a.b.c=value
  void add_to(CLI::App& app);
};

Subcommand add_train(CLI::App& root);
Subcommand add_bench(CLI::App& root);
Subcommand add_tokenizer(CLI::App& root);
Subcommand add_model_info(CLI::App& root);
/// `coca data <leaf>`: the group registers its leaves (src/cli/data.cpp).
Subcommand add_data(CLI::App& root);

/// One leaf of a subcommand group (`coca data synth`): its app and how to run it.
struct Leaf {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Leaf add_data_synth(CLI::App& data_group);
Leaf add_data_inspect(CLI::App& data_group);
Leaf add_data_convert(CLI::App& data_group);
Subcommand add_launch(CLI::App& root);
Subcommand add_caption(CLI::App& root);
Subcommand add_embed(CLI::App& root);
Subcommand add_eval(CLI::App& root);
Subcommand add_forward(CLI::App& root);
Subcommand add_export(CLI::App& root);
Subcommand add_import(CLI::App& root);

}  // namespace coca::cli
