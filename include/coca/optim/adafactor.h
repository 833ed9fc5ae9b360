// Adafactor (Shazeer & Stern 2018, arXiv 1804.04235), written like LibTorch's Adam:
// AdafactorOptions, AdafactorParamState and the Adafactor optimizer, plus
// make_adafactor_options() turning the YAML OptimConfig into options.
// CoCa (arXiv 2205.01917, §4.1) trains with beta1 = 0.9, beta2 = 0.999, weight decay 0.01.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "coca/optim/optim_config.h"

namespace coca::optim {

/// Options of one Adafactor parameter group. Notation (paper, Alg. 4/5): t the
/// 1-based step of a parameter X, G_t its gradient, rho_t = lr().
///
/// Second moment, decay beta2_t:
///   beta2_schedule "constant": beta2_t = beta2 (1 - beta2^(t-1)) / (1 - beta2^t).
///     This is the paper's §7.1 rewrite of a bias-corrected moving average with constant
///     beta2 (the same as Tensor2Tensor's adafactor_decay_rate_adam). We correct the bias
///     because without it the first updates divide by sqrt((1 - beta2) G^2), i.e. are
///     ~32x too large for beta2 = 0.999, and momentum would carry that start-up error.
///     beta2_1 = 0, so V_1 = G_1^2 + eps1 as in the paper.
///   beta2_schedule "pow": beta2_t = 1 - t^decay_rate (paper §7.2, decay_rate = -0.8).
/// Factored (X has >= 2 dims and its last two sizes n, m are both >=
/// min_dim_size_to_factor; leading dims are batch dims with their own statistics):
///   R_t = beta2_t R_{t-1} + (1 - beta2_t) mean_over_cols(G_t^2 + eps1)    [.., n]
///   C_t = beta2_t C_{t-1} + (1 - beta2_t) mean_over_rows(G_t^2 + eps1)    [.., m]
///   V_t = outer(R_t, C_t) / mean(R_t)
/// (the paper's Alg. 4 uses row/column sums; with means the ratio is identical).
/// Otherwise (vectors, scalars, small matrices; paper Alg. 5):
///   V_t = beta2_t V_{t-1} + (1 - beta2_t) (G_t^2 + eps1)
/// Update, clipping (paper §6) and momentum:
///   U_t = G_t / sqrt(V_t);  U_t /= max(1, RMS(U_t) / clip_threshold)  (skipped if 0)
///   beta1 > 0: M_t = beta1 M_{t-1} + (1 - beta1) U_t, D_t = M_t; else D_t = U_t.
///   Momentum averages the clipped update BEFORE the step size is applied (CoCa/paper
///   §9 form); Tensor2Tensor and HF transformers average the lr-scaled update instead.
///   The two agree while lr is constant.
/// Step size and decoupled weight decay:
///   alpha_t = rho_t * (relative_step ? max(eps2, RMS(X_{t-1})) : 1)
///   X_t = X_{t-1} (1 - rho_t * weight_decay) - alpha_t D_t
/// The learning-rate schedule (rho_t) comes from outside (lr_schedule.h); the paper's
/// built-in rho_t = min(1e-2, 1/sqrt(t)) is not implemented.
struct AdafactorOptions
    : public torch::optim::OptimizerCloneableOptions<AdafactorOptions> {
  AdafactorOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor): LibTorch needs it
  /// rho_t, the (relative when relative_step) step size; the scheduler sets it.
  TORCH_ARG(double, lr) = 1e-3;
  /// Momentum decay in [0, 1); 0 keeps no first moment (exp_avg stays undefined).
  TORCH_ARG(double, beta1) = 0.0;
  /// Second-moment decay in [0, 1) for beta2_schedule "constant".
  TORCH_ARG(double, beta2) = 0.999;
  /// "constant" (bias-corrected beta2) or "pow" (beta2_t = 1 - t^decay_rate).
  TORCH_ARG(std::string, beta2_schedule) = "constant";
  /// Exponent of the "pow" schedule, < 0 (paper: -0.8).
  TORCH_ARG(double, decay_rate) = -0.8;
  /// eps1 >= 0, added to G^2 before averaging.
  TORCH_ARG(double, eps1) = 1e-30;
  /// eps2 >= 0, floor of RMS(X) in relative steps.
  TORCH_ARG(double, eps2) = 1e-3;
  /// d >= 0: U /= max(1, RMS(U) / d); 0 turns clipping off.
  TORCH_ARG(double, clip_threshold) = 1.0;
  /// Decoupled weight decay >= 0: X -= lr * weight_decay * X.
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Factor the second moment over the last two dims when both are >= this (>= 0).
  TORCH_ARG(int64_t, min_dim_size_to_factor) = 128;
  /// Multiply the step by max(eps2, RMS(X)) (the paper's relative step size).
  TORCH_ARG(bool, relative_step) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdafactorOptions& lhs, const AdafactorOptions& rhs);
  ~AdafactorOptions() override = default;
  double get_lr() const override;
  void set_lr(const double lr) override;
};

/// Per-parameter state. A factored [.., n, m] parameter keeps exp_avg_sq_row [.., n] and
/// exp_avg_sq_col [.., m] (n + m numbers for a matrix) and no exp_avg_sq; any other
/// parameter keeps exp_avg_sq with its own shape. exp_avg exists only when beta1 > 0.
/// Undefined tensors are not written by serialize().
struct AdafactorParamState
    : public torch::optim::OptimizerCloneableParamState<AdafactorParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg) = {};
  TORCH_ARG(torch::Tensor, exp_avg_sq_row) = {};
  TORCH_ARG(torch::Tensor, exp_avg_sq_col) = {};
  TORCH_ARG(torch::Tensor, exp_avg_sq) = {};

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdafactorParamState& lhs, const AdafactorParamState& rhs);
  ~AdafactorParamState() override = default;
};

/// Adafactor. The optimizer knows nothing about ranks: gradients are averaged before
/// step(). Example:
///   Adafactor opt(model->parameters(), AdafactorOptions(8e-4).beta1(0.9));
///   loss.backward(); opt.step();
class Adafactor : public torch::optim::Optimizer {
 public:
  explicit Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                     AdafactorOptions defaults = {});
  explicit Adafactor(std::vector<torch::Tensor> params, AdafactorOptions defaults = {})
      : Adafactor({torch::optim::OptimizerParamGroup(std::move(params))},
                  std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Writes state and group options (LibTorch's optimizer archive layout).
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Restores the state AND the group options (unlike LibTorch's Adam, which keeps its
  /// current options): the state layout depends on beta1 and min_dim_size_to_factor.
  /// Call WarmupDecayLR::set_step afterwards to reapply the schedule's lr.
  void load(torch::serialize::InputArchive& archive) override;

  /// True when a parameter of this shape gets a factored second moment.
  static bool factored(torch::IntArrayRef shape, int64_t min_dim_size_to_factor);

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(Adafactor);
  }
};

/// Throws c10::Error naming the first invalid option ("Invalid clip_threshold: -1").
void check_adafactor_options(const AdafactorOptions& options);

/// Adafactor options from the YAML config (optim.lr, beta1, beta2, beta2_schedule,
/// decay_rate, eps1, eps2, clip_threshold, weight_decay, min_dim_size_to_factor,
/// relative_step).
AdafactorOptions make_adafactor_options(const OptimConfig& cfg);

}  // namespace coca::optim
