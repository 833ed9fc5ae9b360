#include "cli/commands.h"

namespace coca::cli {

void ConfigArgs::add_to(CLI::App& app) {
  app.add_option("--config,-c", files, "YAML config file; repeat to layer (later files win)")
      ->type_name("FILE");
  app.add_option("--set,-s", overrides, "override one key: --set optim.lr=3e-4 (wins over files)")
      ->type_name("KEY=VALUE");
}

}  // namespace coca::cli
