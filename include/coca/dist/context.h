// The distributed context: who this process is (rank, world size, local rank) and the
// c10d process group its collectives run on (PyTorch's own engine: Gloo on CPU, NCCL on
// CUDA builds). Ranks come from torchrun / `coca launch` (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT) or SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
// SLURM_NODELIST); without either, the run is a single process and every collective is
// a no-op.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coca/common/compat.h"
#include "coca/dist/dist_config.h"

#include COCA_C10D_GROUP_HEADER
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace coca::dist {

/// The c10d class collectives are issued on (ProcessGroup in 1.13, Backend in 2.x).
using ProcessGroup = COCA_C10D_GROUP_CLASS;

/// Where the launcher put this process. `source` is "env" (torchrun / coca launch),
/// "slurm" or "none" (single process).
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";
};

/// Looks an environment variable up; returns nullptr when unset. Tests pass a map.
using EnvLookup = std::function<const char*(const char*)>;
/// The process environment (std::getenv).
EnvLookup process_env();

/// Reads RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT when RANK
/// and WORLD_SIZE are set, else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/SLURM_NODELIST
/// (MASTER_ADDR defaults to the first host of the node list, MASTER_PORT to 29500),
/// else a single process. Throws ConfigError naming the variable on a malformed value.
LaunchEnv read_launch_env(const EnvLookup& env = process_env());

/// Expands a Slurm host list: "node[01-03,07],gpu5" -> {node01, node02, node03, node07,
/// gpu5}; several bracket groups in one name expand as a product ("r[1-2]n[1-2]").
/// Throws std::invalid_argument on unbalanced brackets or bad ranges.
std::vector<std::string> expand_slurm_nodelist(const std::string& nodelist);

/// This process' place in the job and its process group.
struct Context {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  /// "gloo" | "nccl" | "none" (single process, no group).
  std::string backend = "none";
  /// Device this rank computes on: CPU for gloo, cuda:local_rank for nccl.
  torch::Device device = torch::kCPU;
  /// Collective and rendezvous timeout (dist.timeout_s).
  std::chrono::milliseconds timeout{300000};
  /// The store the group rendezvoused on (rank 0 hosts it); null without a group.
  c10::intrusive_ptr<c10d::Store> store;
  /// The process group; null when world_size == 1 (collectives are then no-ops).
  c10::intrusive_ptr<ProcessGroup> pg;

  /// True when collectives actually communicate.
  bool distributed() const { return pg.defined() && world_size > 1; }
  bool is_main() const { return rank == 0; }
};

/// Resolves dist.backend: "auto" -> nccl when compiled in and CUDA is available, else
/// gloo. Throws ConfigError for a backend this build lacks.
std::string resolve_backend(const std::string& requested);

/// Reads the launcher's environment, applies dist.master_addr / dist.master_port when
/// set, connects the TCPStore (hosted by rank 0, dist.timeout_s) and creates the process
/// group. Without a launcher (or WORLD_SIZE=1) returns a single-process context without
/// a group. Sets the logging rank. Example:
///   auto ctx = coca::dist::init_distributed(cfg.dist);
///   if (ctx.is_main()) ...
Context init_distributed(const DistConfig& config);

/// Same as init_distributed with an explicit LaunchEnv (the env is not read): tests run
/// two ranks in two threads of one process with it.
Context init_distributed(const DistConfig& config, const LaunchEnv& env);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int find_free_port();

}  // namespace coca::dist
