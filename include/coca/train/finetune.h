// Finetuning pieces (CoCa arXiv 2205.01917 §4.2 and Tab. 9/10): the classification task
// (`train.task: classify`: a new ClassifierHead over the image encoder's output tokens,
// encoder frozen for the frozen-feature protocol or trained with its own LR, softmax
// cross-entropy with label smoothing, EMA of the trained weights, top-1/top-5 on
// eval.classification), and the zero-shot collapse check of caption finetuning.
//
//   train::ClassifyTrainer trainer(cfg);   // cfg.train.task == "classify"
//   return trainer.fit();
#pragma once

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coca/config/run_config.h"
#include "coca/model/classifier_head.h"
#include "coca/model/coca.h"
#include "coca/train/train_state.h"

namespace coca::data {
struct Batch;
}
namespace torch::optim {
class Optimizer;
}

namespace coca::train {

/// Softmax cross-entropy with label smoothing eps, mean over the batch: the target is
/// (1 - eps) on the label plus eps / C on every class. logits [B, C], labels [B] int64 -> [].
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                  double label_smoothing);

/// Exponential moving average of a set of tensors: shadow = decay * shadow + (1 - decay) *
/// value after every update(); the shadows start as copies of the values.
class Ema {
 public:
  Ema(std::vector<std::pair<std::string, torch::Tensor>> tensors, double decay);
  void update();
  /// Exchanges the shadows with the live tensors' values (twice restores them).
  void swap();
  /// shadow of tensor `i` (the order given to the constructor).
  const torch::Tensor& shadow(size_t i) const { return shadow_[i]; }
  void save(torch::serialize::OutputArchive& archive) const;
  /// Throws IoError naming the missing name when the archive lacks a shadow.
  void load(torch::serialize::InputArchive& archive);
  double decay() const { return decay_; }

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> live_;
  std::vector<torch::Tensor> shadow_;
  double decay_;
};

struct ClassifyAccuracy {
  double top1 = 0;     ///< fraction of images whose best class is right
  double top5 = 0;     ///< fraction with the right class among the best min(5, C)
  int64_t images = 0;
};
/// logits [N, C], labels [N] int64 -> top-1 / top-5.
ClassifyAccuracy classify_accuracy(const torch::Tensor& logits, const torch::Tensor& labels);

/// The warning line of caption finetuning when zero-shot top-1 `now` fell below
/// `fraction` * `before` (the value measured before finetuning); nullopt otherwise, or
/// when fraction is 0 or `before` is not positive.
std::optional<std::string> zero_shot_collapse_warning(double before, double now,
                                                      double fraction);

/// Top-1/top-5 of `head` over the encoder's tokens (visual->forward_features) on the
/// labelled source cfg.eval.classification (eval transform, at most eval.max_samples,
/// eval.batch_size at a time), without gradients; restores the modules' modes.
/// Throws ConfigError when the source is not set or has no labelled samples.
ClassifyAccuracy evaluate_classifier(model::CoCa& model, model::ClassifierHead& head,
                                     const config::RunConfig& cfg);

/// The classification trainer (train.task: classify). Single process: throws ConfigError
/// in a distributed run (and for bf16 or micro-batches: fp32 only). The CoCa weights come
/// from train.init_from (a checkpoint or a
/// run's checkpoints folder); the number of classes from the class names of
/// data.sources (every source must have the same). train.classify_mode frozen: the whole
/// CoCa model is frozen (requires_grad false, eval mode, forward under no_grad) and only
/// the head trains; full: the ViT (visual.* except its CoCa poolers and projection) trains
/// with lr * optim.encoder_lr_scale. train.ema_decay > 0 keeps an EMA of the trained
/// weights, used for evaluation and saved as ema.pt. Checkpoints hold model.pt (CoCa),
/// head.pt, optim.pt, ema.pt, rng.pt, train_state.yaml and config.yaml, and resume exactly.
class ClassifyTrainer {
 public:
  explicit ClassifyTrainer(config::RunConfig cfg);
  ~ClassifyTrainer();
  ClassifyTrainer(const ClassifyTrainer&) = delete;
  ClassifyTrainer& operator=(const ClassifyTrainer&) = delete;

  /// Runs to train.steps (resuming first when train.resume says so); evaluates every
  /// train.eval_every steps and at the end when eval.classification is set. Returns 0,
  /// or 128 + signal when stopped by SIGINT/SIGTERM. `stop_after` as Trainer::fit.
  int fit(int64_t stop_after = 0);
  /// One optimizer step on `batch` (labels: label_ids[i][0]); returns the loss.
  double train_step(const data::Batch& batch);
  /// Top-1/top-5 on eval.classification, with the EMA weights when EMA is on.
  ClassifyAccuracy evaluate();
  std::filesystem::path save_checkpoint();
  void load_checkpoint(const std::filesystem::path& dir);

  model::CoCa& model();
  model::ClassifierHead& head();
  torch::optim::Optimizer& optimizer();
  const TrainState& state() const;
  /// The EMA, or nullptr when train.ema_decay is 0.
  const Ema* ema() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A classify-task checkpoint's CoCa model and head, EMA weights applied when the
/// checkpoint has them, in eval mode.
struct ClassifierCheckpoint {
  config::RunConfig config;
  model::CoCa model{nullptr};
  model::ClassifierHead head{nullptr};
  std::filesystem::path dir;
};
/// `spec` as load_checkpoint_model; throws ConfigError when the checkpoint is not of
/// train.task classify.
ClassifierCheckpoint load_classifier_checkpoint(const std::filesystem::path& spec);

}  // namespace coca::train
