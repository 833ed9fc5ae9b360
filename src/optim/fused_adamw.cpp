#include "coca/optim/fused_adamw.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "coca/common/compat.h"

namespace coca::optim {
namespace {

struct AdamWCoefficients {
  float decay;  // 1 - lr * wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float sqrt_bc2;   // sqrt(1 - beta2^t)
  float eps;
  float step_size;  // lr / (1 - beta1^t)
};

// Elements [i, n) one at a time; the vector loop below computes the same expressions.
void adamw_scalar(float* p, const float* g, float* m, float* v, int64_t i, int64_t n,
                  const AdamWCoefficients& c) {
  for (; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    const float denom = std::sqrt(vi) / c.sqrt_bc2 + c.eps;
    p[i] = p[i] * c.decay - c.step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define COCA_ADAMW_AVX2 1
// Eight lanes at a time; no FMA, so every lane rounds as adamw_scalar does.
__attribute__((target("avx2"))) void adamw_avx2(float* p, const float* g, float* m, float* v,
                                                int64_t n, const AdamWCoefficients& c) {
  const __m256 decay = _mm256_set1_ps(c.decay), b1 = _mm256_set1_ps(c.beta1),
               omb1 = _mm256_set1_ps(c.one_minus_beta1), b2 = _mm256_set1_ps(c.beta2),
               omb2 = _mm256_set1_ps(c.one_minus_beta2), sbc2 = _mm256_set1_ps(c.sqrt_bc2),
               eps = _mm256_set1_ps(c.eps), step = _mm256_set1_ps(c.step_size);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1),
                                    _mm256_mul_ps(omb1, gi));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2),
                                    _mm256_mul_ps(_mm256_mul_ps(omb2, gi), gi));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sbc2), eps);
    const __m256 pi = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), decay),
                                    _mm256_div_ps(_mm256_mul_ps(step, mi), denom));
    _mm256_storeu_ps(p + i, pi);
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
  }
  adamw_scalar(p, g, m, v, i, n, c);
}
#endif

void adamw_block(float* p, const float* g, float* m, float* v, int64_t n,
                 const AdamWCoefficients& c) {
#if COCA_ADAMW_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return adamw_avx2(p, g, m, v, n, c);
#endif
  adamw_scalar(p, g, m, v, 0, n, c);
}

bool fusable(const torch::Tensor& p, const torch::optim::AdamWOptions& options) {
  const auto& g = p.grad();
  return !options.amsgrad() && p.device().is_cpu() && p.scalar_type() == torch::kFloat &&
         g.scalar_type() == torch::kFloat && !g.is_sparse() && p.is_contiguous() &&
         g.is_contiguous();
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined() && !fusable(p, options)) return torch::optim::AdamW::step(closure);
    }
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = compat::state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*it->second);
      auto& m = state.exp_avg();
      auto& v = state.exp_avg_sq();
      TORCH_CHECK(m.is_contiguous() && v.is_contiguous() && m.sizes() == p.sizes() &&
                      v.sizes() == p.sizes() && m.scalar_type() == torch::kFloat &&
                      v.scalar_type() == torch::kFloat,
                  "FusedAdamW: state of a parameter ", p.sizes(),
                  " is not contiguous fp32 of its shape");
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const auto t = static_cast<double>(state.step());
      AdamWCoefficients c{};
      c.decay = static_cast<float>(1.0 - options.lr() * options.weight_decay());
      c.beta1 = static_cast<float>(beta1);
      c.one_minus_beta1 = static_cast<float>(1.0 - beta1);
      c.beta2 = static_cast<float>(beta2);
      c.one_minus_beta2 = static_cast<float>(1.0 - beta2);
      c.sqrt_bc2 = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
      c.eps = static_cast<float>(options.eps());
      c.step_size = static_cast<float>(options.lr() / (1.0 - std::pow(beta1, t)));
      float* pp = p.data_ptr<float>();
      const float* gp = p.grad().data_ptr<float>();
      float* mp = m.data_ptr<float>();
      float* vp = v.data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
        adamw_block(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c);
      });
    }
  }
  return loss;
}

}  // namespace coca::optim
