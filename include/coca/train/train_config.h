// Training loop, checkpoint, logging and runtime configuration (no torch include).
#pragma once

#include <cstdint>
#include <string>

namespace coca::train {

struct TrainConfig {
  std::string task = "pretrain";      ///< pretrain | classify | caption
  int64_t steps = 1000;               ///< optimizer steps
  int64_t batch_size = 64;            ///< global batch (all ranks, all micro-batches)
  int64_t micro_batch_size = 0;       ///< per-rank micro-batch; 0 = no accumulation
  double lambda_con = 1.0;            ///< contrastive loss weight (paper: 1)
  double lambda_cap = 2.0;            ///< captioning loss weight (paper: 2)
  std::string contrastive_reduction = "mean";  ///< mean of both directions (open_clip) | sum (paper Eq. 2)
  std::string clamp_logit_scale = "auto";      ///< auto (on for open_clip layout) | on | off
  double label_smoothing = 0.0;       ///< caption/classification CE label smoothing
  std::string precision = "fp32";     ///< fp32 | bf16 (autocast)
  std::string device = "auto";        ///< auto | cpu | cuda
  int64_t max_bad_steps = 10;         ///< consecutive non-finite steps before stopping
  uint64_t seed = 0;                  ///< global seed (model init, data order, sampling)
  std::string run_dir = "runs/run";   ///< outputs: config, metrics.jsonl, checkpoints
  std::string resume = "none";        ///< none | auto | path of a checkpoint folder
  std::string init_from;              ///< checkpoint to initialise weights from (finetuning)
  int64_t eval_every = 0;             ///< evaluate every N steps; 0 = only at the end
  std::string classify_mode = "frozen";  ///< task classify: frozen (probe) | full (finetune encoder)
  double ema_decay = 0.0;             ///< task classify: EMA decay of the trained weights; 0 = off
};

struct CheckpointConfig {
  int64_t every = 1000;   ///< save every N steps (and at the end); 0 = only at the end
  int64_t keep = 3;       ///< keep the newest k checkpoints
  std::string dir;        ///< folder; empty = <run_dir>/checkpoints
};

struct LogConfig {
  std::string level = "info";  ///< trace | debug | info | warn | error | off
  int64_t every = 10;          ///< console + metrics.jsonl every N steps
};

struct RuntimeConfig {
  int64_t threads = 0;  ///< compute threads (OpenMP and OpenBLAS); 0 = all cores
  /// Row blocks of each step's batch run concurrently, one thread each with
  /// threads / batch_shards intra-op threads (train/parallel_step.h); 0 = auto (one per
  /// compute thread on a CPU in a single process), 1 = off.
  int64_t batch_shards = 0;
};

}  // namespace coca::train
