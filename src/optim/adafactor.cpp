// Adafactor (arXiv 1804.04235); the update equations are documented in adafactor.h.
#include "coca/optim/adafactor.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "coca/common/compat.h"

namespace coca::optim {

namespace detail {

/// Root mean square of all elements, as a 0-d tensor.
torch::Tensor rms(const torch::Tensor& x) { return x.pow(2).mean().sqrt(); }

/// Equality of optional tensors: both undefined, or both defined and equal.
bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  return a.sizes() == b.sizes() && a.dtype() == b.dtype() && torch::equal(a, b);
}

}  // namespace detail

namespace {

/// Sum of f(x[i]) for i < n with eight independent float accumulators, so the loop
/// vectorises (a single running sum is one long dependency chain).
template <class F>
float sum8(const float* x, int64_t n, F f) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += f(x[i + k], i + k);
  }
  float s = 0;
  for (; i < n; ++i) s += f(x[i], i);
  for (float a : acc) s += a;
  return s;
}

/// The factored update of one contiguous fp32 parameter [..., R, C] in three passes over
/// its memory and no temporary of its size (the unfused path makes five): (1) row and
/// column sums of G^2 + eps1, (2) RMS of the update for clipping, (3) update, momentum,
/// decay and step. The formulas and their order are those of Adafactor::step below.
void factored_update_fp32(torch::Tensor& p, const torch::Tensor& grad, torch::Tensor& row,
                          torch::Tensor& col, torch::Tensor& exp_avg, double beta2t,
                          double eps1, double clip, double beta1, double lr,
                          double weight_decay) {
  const int64_t R = p.size(-2), C = p.size(-1);
  const int64_t rows = p.numel() / C;  // L * R rows of C elements
  const int64_t L = rows / R;
  const float* g = grad.data_ptr<float>();
  const float e1 = static_cast<float>(eps1);
  const int64_t grain = std::max<int64_t>(1, 32768 / C);
  const int threads = at::get_num_threads();

  // (1) Row sums [L*R] and per-thread column sums [threads][L*C].
  std::vector<float> row_sum(rows), col_part(static_cast<size_t>(threads) * L * C, 0.0f);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    float* cp = col_part.data() + static_cast<size_t>(at::get_thread_num()) * L * C;
    for (int64_t r = begin; r < end; ++r) {
      const float* gr = g + r * C;
      float* cr = cp + (r / R) * C;
      row_sum[r] = sum8(gr, C, [&](float x, int64_t c) {
        const float v = x * x + e1;
        cr[c] += v;
        return v;
      });
    }
  });
  auto row_mean = torch::from_blob(row_sum.data(), row.sizes(), torch::kFloat).div(C);
  auto col_mean = torch::from_blob(col_part.data(), {L * C}, torch::kFloat).clone();
  for (int t = 1; t < threads; ++t) {
    col_mean.add_(torch::from_blob(col_part.data() + static_cast<size_t>(t) * L * C, {L * C},
                                   torch::kFloat));
  }
  col_mean = col_mean.view(col.sizes()).div_(R);
  row.mul_(beta2t).add_(row_mean, 1.0 - beta2t);
  col.mul_(beta2t).add_(col_mean, 1.0 - beta2t);
  const auto rf_t = row.div(row.mean(-1, /*keepdim=*/true)).rsqrt_().contiguous();  // [.., R]
  const auto cf_t = col.rsqrt().contiguous();                                        // [.., C]
  const float* rf = rf_t.data_ptr<float>();
  const float* cf = cf_t.data_ptr<float>();

  // (2) RMS of U = G * rf * cf, for the clipping divisor.
  float divisor = 1.0f;
  if (clip > 0) {
    std::vector<double> sq(threads, 0.0);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      double s = 0;
      for (int64_t r = begin; r < end; ++r) {
        const float* cr = cf + (r / R) * C;
        const float rr = rf[r];
        s += sum8(g + r * C, C, [&](float x, int64_t c) {
          const float u = x * rr * cr[c];
          return u * u;
        });
      }
      sq[at::get_thread_num()] += s;
    });
    double total = 0;
    for (double v : sq) total += v;
    const double rms = std::sqrt(total / static_cast<double>(p.numel()));
    divisor = static_cast<float>(std::max(1.0, rms / clip));
  }

  // (3) Momentum, decoupled weight decay and the step.
  float* pp = p.data_ptr<float>();
  float* mp = beta1 > 0 ? exp_avg.data_ptr<float>() : nullptr;
  const float b1 = static_cast<float>(beta1), omb1 = static_cast<float>(1.0 - beta1);
  const float decay = static_cast<float>(weight_decay > 0 ? 1.0 - lr * weight_decay : 1.0);
  const float step = static_cast<float>(lr);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* gr = g + r * C;
      const float* cr = cf + (r / R) * C;
      const float rr = rf[r];
      float* pr = pp + r * C;
      if (mp) {
        float* mr = mp + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float u = gr[c] * rr * cr[c] / divisor;
          mr[c] = mr[c] * b1 + omb1 * u;
          pr[c] = pr[c] * decay - mr[c] * step;
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const float u = gr[c] * rr * cr[c] / divisor;
          pr[c] = pr[c] * decay - u * step;
        }
      }
    }
  });
}

}  // namespace

AdafactorOptions::AdafactorOptions(double lr) : lr_(lr) {}

bool operator==(const AdafactorOptions& lhs, const AdafactorOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.beta1() == rhs.beta1() && lhs.beta2() == rhs.beta2() &&
         lhs.beta2_schedule() == rhs.beta2_schedule() &&
         lhs.decay_rate() == rhs.decay_rate() && lhs.eps1() == rhs.eps1() &&
         lhs.eps2() == rhs.eps2() && lhs.clip_threshold() == rhs.clip_threshold() &&
         lhs.weight_decay() == rhs.weight_decay() &&
         lhs.min_dim_size_to_factor() == rhs.min_dim_size_to_factor() &&
         lhs.relative_step() == rhs.relative_step();
}

void AdafactorOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2_schedule);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(decay_rate);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(clip_threshold);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(min_dim_size_to_factor);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(relative_step);
}

void AdafactorOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(std::string, beta2_schedule);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, decay_rate);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, clip_threshold);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, min_dim_size_to_factor);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, relative_step);
}

double AdafactorOptions::get_lr() const { return lr(); }

void AdafactorOptions::set_lr(const double lr) { this->lr(lr); }

bool operator==(const AdafactorParamState& lhs, const AdafactorParamState& rhs) {
  return lhs.step() == rhs.step() && detail::same_tensor(lhs.exp_avg(), rhs.exp_avg()) &&
         detail::same_tensor(lhs.exp_avg_sq_row(), rhs.exp_avg_sq_row()) &&
         detail::same_tensor(lhs.exp_avg_sq_col(), rhs.exp_avg_sq_col()) &&
         detail::same_tensor(lhs.exp_avg_sq(), rhs.exp_avg_sq());
}

void AdafactorParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_row);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_col);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void AdafactorParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_row);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_col);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

void check_adafactor_options(const AdafactorOptions& o) {
  TORCH_CHECK(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
  TORCH_CHECK(o.beta1() >= 0 && o.beta1() < 1.0, "Invalid beta1: ", o.beta1(),
              " (expected 0 <= beta1 < 1; 0 = no momentum)");
  TORCH_CHECK(o.beta2() >= 0 && o.beta2() < 1.0, "Invalid beta2: ", o.beta2(),
              " (expected 0 <= beta2 < 1)");
  TORCH_CHECK(o.beta2_schedule() == "constant" || o.beta2_schedule() == "pow",
              "Invalid beta2_schedule: '", o.beta2_schedule(), "' (expected constant | pow)");
  TORCH_CHECK(std::isfinite(o.decay_rate()) && o.decay_rate() < 0, "Invalid decay_rate: ",
              o.decay_rate(), " (expected < 0, e.g. -0.8)");
  TORCH_CHECK(o.eps1() >= 0, "Invalid eps1: ", o.eps1());
  TORCH_CHECK(o.eps2() >= 0, "Invalid eps2: ", o.eps2());
  TORCH_CHECK(o.clip_threshold() >= 0, "Invalid clip_threshold: ", o.clip_threshold(),
              " (expected >= 0; 0 = no update clipping)");
  TORCH_CHECK(o.weight_decay() >= 0, "Invalid weight_decay: ", o.weight_decay());
  TORCH_CHECK(o.min_dim_size_to_factor() >= 0, "Invalid min_dim_size_to_factor: ",
              o.min_dim_size_to_factor());
}

Adafactor::Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                     AdafactorOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups),
                              std::make_unique<AdafactorOptions>(defaults)) {
  check_adafactor_options(defaults);
  // Groups may carry their own options (per-group lr / weight decay): check them too.
  for (const auto& group : param_groups_) {
    const auto* options = dynamic_cast<const AdafactorOptions*>(&group.options());
    TORCH_CHECK(options != nullptr,
                "Adafactor: a parameter group carries options of another optimizer");
    check_adafactor_options(*options);
  }
}

bool Adafactor::factored(torch::IntArrayRef shape, int64_t min_dim_size_to_factor) {
  const auto n = static_cast<int64_t>(shape.size());
  return n >= 2 && shape[n - 2] >= min_dim_size_to_factor &&
         shape[n - 1] >= min_dim_size_to_factor;
}

torch::Tensor Adafactor::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdafactorOptions&>(group.options());
    const double lr = options.lr();
    const double beta1 = options.beta1();
    const double eps1 = options.eps1();
    const double clip = options.clip_threshold();
    const bool pow_schedule = options.beta2_schedule() == "pow";
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      TORCH_CHECK(!grad.is_sparse(), "Adafactor does not support sparse gradients");
      if (p.numel() == 0) continue;
      const bool is_factored = factored(p.sizes(), options.min_dim_size_to_factor());

      auto key = compat::state_key(p);
      auto state_it = state_.find(key);
      if (state_it == state_.end()) {
        // Lazy state creation, as in LibTorch's Adam.
        auto state = std::make_unique<AdafactorParamState>();
        state->step(0);
        if (beta1 > 0) state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        if (is_factored) {
          state->exp_avg_sq_row(torch::zeros(p.sizes().slice(0, p.dim() - 1), p.options()));
          auto col_shape = p.sizes().vec();
          col_shape.erase(col_shape.end() - 2);
          state->exp_avg_sq_col(torch::zeros(col_shape, p.options()));
        } else {
          state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        }
        state_it = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<AdafactorParamState&>(*state_it->second);
      TORCH_CHECK(state.exp_avg_sq_row().defined() == is_factored,
                  "Adafactor: loaded state of a parameter ", p.sizes(),
                  " does not match min_dim_size_to_factor (factored state expected: ",
                  is_factored, ")");
      TORCH_CHECK(state.exp_avg().defined() == (beta1 > 0),
                  "Adafactor: state has ", state.exp_avg().defined() ? "a" : "no",
                  " first moment but beta1 = ", beta1);

      state.step(state.step() + 1);
      const auto t = static_cast<double>(state.step());
      // beta2_t (see AdafactorOptions); both schedules give beta2_1 = 0.
      const double beta2t =
          pow_schedule ? 1.0 - std::pow(t, options.decay_rate())
                       : options.beta2() * (1.0 - std::pow(options.beta2(), t - 1.0)) /
                             (1.0 - std::pow(options.beta2(), t));

      if (is_factored && !options.relative_step() && p.device().is_cpu() &&
          p.scalar_type() == torch::kFloat && grad.scalar_type() == torch::kFloat &&
          p.is_contiguous() && grad.is_contiguous() &&
          (beta1 == 0 || state.exp_avg().is_contiguous())) {
        factored_update_fp32(p, grad, state.exp_avg_sq_row(), state.exp_avg_sq_col(),
                             state.exp_avg(), beta2t, eps1, clip, beta1, lr,
                             options.weight_decay());
        continue;
      }
      auto grad_sq = grad.square().add_(eps1);
      torch::Tensor update;
      if (is_factored) {
        auto& row = state.exp_avg_sq_row();
        auto& col = state.exp_avg_sq_col();
        row.mul_(beta2t).add_(grad_sq.mean(-1), 1.0 - beta2t);
        col.mul_(beta2t).add_(grad_sq.mean(-2), 1.0 - beta2t);
        // 1/sqrt(V) = rsqrt(R / mean(R)) (x) rsqrt(C)
        auto row_factor = row.div(row.mean(-1, /*keepdim=*/true)).rsqrt_().unsqueeze(-1);
        auto col_factor = col.rsqrt().unsqueeze(-2);
        update = grad.mul(row_factor).mul_(col_factor);
      } else {
        auto& v = state.exp_avg_sq();
        v.mul_(beta2t).add_(grad_sq, 1.0 - beta2t);
        update = grad.mul(v.rsqrt());
      }
      if (clip > 0) {
        update.div_((detail::rms(update) / clip).clamp_min_(1.0));
      }
      if (beta1 > 0) {
        state.exp_avg().mul_(beta1).add_(update, 1.0 - beta1);
        update = state.exp_avg();
      }
      torch::Tensor step_size = torch::scalar_tensor(lr, p.options());
      if (options.relative_step()) {
        step_size = step_size * detail::rms(p).clamp_min(options.eps2());
      }
      if (options.weight_decay() > 0) {
        p.mul_(1.0 - lr * options.weight_decay());
      }
      p.sub_(update * step_size);
    }
  }
  return loss;
}

void Adafactor::save(torch::serialize::OutputArchive& archive) const {
  serialize(*this, archive);
}

void Adafactor::load(torch::serialize::InputArchive& archive) {
  serialize(*this, archive);
  // LibTorch's optimizer serialize() restores the per-parameter state but not the group
  // options. Adafactor's state layout depends on them (beta1, min_dim_size_to_factor), so
  // the saved options replace the current ones.
  torch::serialize::InputArchive groups_archive;
  archive.read("param_groups", groups_archive);
  std::vector<std::pair<std::vector<std::string>,
                        std::unique_ptr<torch::optim::OptimizerOptions>>>
      saved;
  torch::optim::detail::serialize<AdafactorOptions>(groups_archive, saved);
  for (size_t i = 0; i < saved.size() && i < param_groups_.size(); ++i) {
    const auto& options = static_cast<const AdafactorOptions&>(*saved[i].second);
    check_adafactor_options(options);
    param_groups_[i].set_options(std::move(saved[i].second));
  }
}

AdafactorOptions make_adafactor_options(const OptimConfig& cfg) {
  AdafactorOptions options(cfg.lr);
  options.beta1(cfg.beta1)
      .beta2(cfg.beta2)
      .beta2_schedule(cfg.beta2_schedule)
      .decay_rate(cfg.decay_rate)
      .eps1(cfg.eps1)
      .eps2(cfg.eps2)
      .clip_threshold(cfg.clip_threshold)
      .weight_decay(cfg.weight_decay)
      .min_dim_size_to_factor(cfg.min_dim_size_to_factor)
      .relative_step(cfg.relative_step);
  check_adafactor_options(options);
  return options;
}

}  // namespace coca::optim
