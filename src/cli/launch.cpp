// `coca launch --nproc N [--master-port P] -- train --config F ...`: runs N ranks of this
// binary on this machine (the logic is in coca::dist::launch).
#include "coca/dist/launch.h"

#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace coca::cli {

Subcommand add_launch(CLI::App& root) {
  auto opts = std::make_shared<dist::LaunchOptions>();
  CLI::App* app = root.add_subcommand(
      "launch", "run N ranks of a coca command on this machine (torchrun-style environment)");
  app->add_option("--nproc", opts->nproc, "processes (ranks) to start")
      ->required()
      ->check(CLI::PositiveNumber);
  app->add_option("--master-port", opts->master_port, "rendezvous port (0 = a free port)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--threads-per-proc", opts->threads_per_proc,
                  "OMP/OpenBLAS threads per rank (0 = cores / nproc)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--grace", opts->grace_s,
                  "seconds between SIGTERM and SIGKILL when stopping ranks")
      ->check(CLI::NonNegativeNumber);
  app->add_option("command", opts->args, "the coca command to run, after --")->required();

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [] { return int64_t{1}; };  // the launcher itself only relays output
  cmd.run = [opts] { return dist::launch(*opts); };
  return cmd;
}

}  // namespace coca::cli
