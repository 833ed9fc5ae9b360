// The training loop: builds every component from a RunConfig, runs optimizer steps,
// logs, checkpoints and resumes exactly. CoCa pretraining (arXiv 2205.01917 §4.1) and
// finetuning share it.
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
  /// Builds, in order: device, tokenizer, data sources, model, optimizer, schedule,
  /// checkpointer and metrics. The loader starts in fit(), after resuming.
  explicit Trainer(config::RunConfig cfg);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Runs to train.steps, resuming first when train.resume says so. Returns 0, or
  /// 128 + signal when SIGINT/SIGTERM stopped it (after writing a checkpoint).
  /// `stop_after` > 0 ends this session after that optimizer step, with a checkpoint,
  /// as an interruption would (the schedule still spans train.steps).
  int fit(int64_t stop_after = 0);

  /// One optimizer step on `batch` (forward, backward over micro-batches, clip, step,
  /// schedule). Does not touch the data cursor or the step counter.
  StepStats train_step(const data::Batch& batch);

  /// Writes a checkpoint of the current state; returns its folder.
  std::filesystem::path save_checkpoint();
  /// Restores model, optimizer, schedule, RNG and state from a checkpoint folder.
  void load_checkpoint(const std::filesystem::path& dir);

  model::CoCa& model();
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
