// `coca launch`: starts N copies of a command on this machine with the environment
// torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), prefixes each output line with `[rank N] `, forwards SIGINT/SIGTERM,
// and stops the others when one fails.
#pragma once

#include <string>
#include <vector>

namespace coca::dist {

struct LaunchOptions {
  int nproc = 1;                              ///< processes to start (>= 1)
  int master_port = 0;                        ///< 0 = a free port on 127.0.0.1
  std::string master_addr = "127.0.0.1";      ///< rendezvous address given to the children
  int threads_per_proc = 0;                   ///< OMP/OpenBLAS threads per child; 0 = cores / nproc
  double grace_s = 5.0;                       ///< SIGTERM -> SIGKILL delay when stopping children
  std::string executable = "/proc/self/exe";  ///< program to run (default: this binary)
  std::vector<std::string> args;  ///< its arguments, e.g. {"train", "--config", "x.yaml"}
};

/// Runs the children to completion and returns the launcher's exit code: 0 when all
/// exited 0; else the first failing child's code (128+signal for a child killed by a
/// signal), after the others were sent SIGTERM and, after grace_s, SIGKILL. A SIGINT or
/// SIGTERM to the launcher is forwarded to every child. Throws std::invalid_argument for
/// bad options and std::runtime_error when a pipe or fork fails.
int launch(const LaunchOptions& options);

}  // namespace coca::dist
