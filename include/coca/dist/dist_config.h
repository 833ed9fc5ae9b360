// Distributed configuration (no torch include). Values left at 0/empty come from the
// launcher's environment (torchrun, SLURM, `coca launch`).
#pragma once

#include <cstdint>
#include <string>

namespace coca::dist {

struct DistConfig {
  std::string backend = "auto";  ///< auto | gloo | nccl
  std::string master_addr;       ///< empty = MASTER_ADDR / SLURM first host / 127.0.0.1
  int64_t master_port = 0;       ///< 0 = MASTER_PORT / 29500
  int64_t timeout_s = 300;       ///< collective and rendezvous timeout
  double bucket_mb = 25.0;       ///< gradient all-reduce bucket size
  int64_t zero_stage = 0;        ///< 0 = replicated optimizer state, 1 = sharded (ZeRO-1)
  bool check_params = false;     ///< verify identical parameters across ranks at start
};

}  // namespace coca::dist
