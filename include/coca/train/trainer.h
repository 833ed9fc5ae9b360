// The training loop: builds every component from a RunConfig, runs optimizer steps,
// logs, checkpoints and resumes exactly. CoCa pretraining (arXiv 2205.01917 §4.1) and
// finetuning share it. Data-parallel over the ranks of `coca launch` / torchrun / SLURM:
// each rank trains on train.batch_size / world_size samples of every batch, gradients
// are averaged (GradSync), the contrastive loss uses the gathered global batch and the
// caption loss the global token mean, so the update equals one process with the global
// batch (dist.zero_stage 1 shards the optimizer state).
//
//   train::Trainer trainer(config::load_run_config({"configs/pretrain/demo.yaml"}, {}));
//   return trainer.fit();
#pragma once

#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "coca/config/run_config.h"
#include "coca/model/coca.h"
#include "coca/train/train_state.h"

namespace coca::data {
struct Batch;
}
namespace coca::dist {
struct Context;
}

namespace coca::train {

/// What one optimizer step did (losses are the weighted parts, as open_clip logs them).
struct StepStats {
  double loss = 0;              ///< lambda_con * L_con + lambda_cap * L_cap
  double loss_contrastive = 0;  ///< lambda_con * L_con
  double loss_caption = 0;      ///< lambda_cap * L_cap
  double grad_norm = 0;         ///< global gradient norm before clipping
  double lr = 0;                ///< lr of the first param group for this step
  double logit_scale = 0;       ///< exp(logit_scale) after the step
  int64_t samples = 0;          ///< samples in the batch
  int64_t caption_tokens = 0;   ///< real target tokens in the batch
  bool skipped = false;         ///< non-finite loss or gradient: no update was made
};

class Trainer {
 public:
  /// Builds, in order: distributed context (init_distributed(cfg.dist)), device,
  /// tokenizer, data sources, model (rank 0's weights broadcast to all ranks), optimizer,
  /// schedule, checkpointer and metrics. The loader starts in fit(), after resuming.
  /// Throws ConfigError naming train.batch_size when it is not a multiple of the world
  /// size.
  explicit Trainer(config::RunConfig cfg);
  /// Same with an existing distributed context instead of init_distributed (tests run
  /// ranks as threads with it). The context must outlive the trainer.
  Trainer(config::RunConfig cfg, const dist::Context& ctx);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Runs to train.steps, resuming first when train.resume says so. Returns 0, or
  /// 128 + signal when SIGINT/SIGTERM stopped it (after writing a checkpoint).
  /// `stop_after` > 0 ends this session after that optimizer step, with a checkpoint,
  /// as an interruption would (the schedule still spans train.steps).
  int fit(int64_t stop_after = 0);

  /// One optimizer step on `batch`, this rank's part of the global batch (forward,
  /// backward over micro-batches, gradient averaging over ranks, clip, step, schedule).
  /// Collective: every rank calls it with a batch of the same size. Losses in the stats
  /// are the global-batch values (equal on every rank), samples and caption_tokens the
  /// global counts. Does not touch the data cursor or the step counter.
  StepStats train_step(const data::Batch& batch);

  /// Writes a checkpoint of the current state; returns its folder. Collective: rank 0
  /// writes the folder with every rank's data cursor; with dist.zero_stage 1 each rank
  /// adds its optimizer shard (optim_rank<r>.pt instead of optim.pt).
  std::filesystem::path save_checkpoint();
  /// Restores model, optimizer, schedule, RNG and state from a checkpoint folder (every
  /// rank reads it; this rank's data cursor becomes state().data_cursor). Throws IoError
  /// naming both world sizes when the checkpoint was written by a different number of
  /// ranks (the data streams depend on it, so that resume would not be exact).
  void load_checkpoint(const std::filesystem::path& dir);

  model::CoCa& model();
  /// state().data_cursor is this rank's cursor.
  const TrainState& state() const;
  const config::RunConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A model rebuilt from a checkpoint alone (its config.yaml and model.pt).
struct CheckpointModel {
  config::RunConfig config;      ///< the resolved config the checkpoint was written with
  model::CoCa model{nullptr};    ///< weights loaded, in eval mode
  std::filesystem::path dir;     ///< the checkpoint folder that was read
};
/// `spec`: a checkpoint folder, or a run/checkpoints folder (its newest checkpoint).
/// Throws IoError naming the folder when it holds no complete checkpoint.
CheckpointModel load_checkpoint_model(const std::filesystem::path& spec);

/// Loads model weights (and nothing else) from a checkpoint folder into `model`.
void load_model_weights(model::CoCa& model, const std::filesystem::path& checkpoint_dir);

}  // namespace coca::train
