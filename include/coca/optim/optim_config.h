// Optimizer and learning-rate schedule configuration (no torch include).
// Adafactor: Shazeer & Stern 2018, arXiv 1804.04235; CoCa settings: paper §4.1.
#pragma once

#include <cstdint>
#include <string>

namespace coca::optim {

struct OptimConfig {
  std::string name = "adafactor";   ///< adafactor | adamw
  double lr = 8e-4;                 ///< peak learning rate (paper: 8e-4)
  double beta1 = 0.9;               ///< momentum; 0 = none (Adafactor keeps no first moment)
  double beta2 = 0.999;             ///< second-moment decay when beta2_schedule = constant
  std::string beta2_schedule = "constant";  ///< constant | pow (beta2_t = 1 - t^decay_rate)
  double decay_rate = -0.8;         ///< exponent of the pow schedule
  double eps1 = 1e-30;              ///< added to squared gradients (Adafactor eps_1)
  double eps2 = 1e-3;               ///< floor of the parameter RMS for relative steps (eps_2)
  double clip_threshold = 1.0;      ///< update clipping by RMS (d); 0 = off
  double weight_decay = 0.01;       ///< decoupled weight decay (paper: 0.01)
  int64_t min_dim_size_to_factor = 128;  ///< factor only if the two largest dims are >= this
  bool relative_step = false;       ///< scale updates by max(eps2, RMS(param))
  double adam_eps = 1e-8;           ///< adamw epsilon
  bool decay_norms_and_biases = false;  ///< apply weight decay to 1-d params and logit scale
  double encoder_lr_scale = 1.0;    ///< LR multiplier for the image encoder (finetuning)
  double logit_scale_lr_scale = 1.0;  ///< LR multiplier for the learned temperature (own group if != 1)
  double grad_clip_norm = 1.0;      ///< global gradient-norm clip; 0 = off
};

struct ScheduleConfig {
  std::string name = "linear";  ///< linear | cosine | constant (after warm-up)
  double warmup_fraction = 0.02;  ///< warm-up as a fraction of train.steps (paper: 2%)
  int64_t warmup_steps = 0;     ///< warm-up in steps; wins over warmup_fraction when > 0
  double final_lr_fraction = 0.0;  ///< LR at the last step, as a fraction of the peak
};

}  // namespace coca::optim
