// Optimizer updates, PyTorch 1.13's single-tensor formulas to the letter, one pass over memory per
// parameter. param and the optimizer state are updated in place; grad is read only.
#include <cmath>

#include "kernels.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 16384;
}

// torch/optim/sgd.py: g = ±grad + wd·p; buf = g on the first step, else momentum·buf + (1 − dampening)·g;
// g = g + momentum·buf (Nesterov) or buf; p −= lr·g. momentum_buf may be null when momentum == 0.
void sgd_step(ThreadPool& pool, float* param, float* momentum_buf, const float* grad, int64_t N, float lr,
              float momentum, float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      float g = maximize ? -grad[i] : grad[i];
      if (weight_decay != 0.f) g += weight_decay * param[i];
      if (momentum != 0.f) {
        float buf = first_step ? g : momentum * momentum_buf[i] + (1.f - dampening) * g;
        momentum_buf[i] = buf;
        g = nesterov ? g + momentum * buf : buf;
      }
      param[i] -= lr * g;
    }
  });
}

// torch/optim/adam.py (Adam, decoupled = false) and adamw.py (AdamW, decoupled = true):
// Adam adds wd·p to the gradient; AdamW multiplies p by (1 − lr·wd) first.
// m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²; vmax = max(vmax, v) with amsgrad;
// p −= lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + eps) — eps outside the square root, after the bias
// correction, as PyTorch places it.
void adam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const float* grad, int64_t N, float lr, float beta1, float beta2, float eps, float weight_decay,
               int64_t step, bool amsgrad, bool decoupled, bool maximize) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = decoupled ? 1.f - lr * weight_decay : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      float g = maximize ? -grad[i] : grad[i];
      float p = param[i];
      if (decoupled) p *= decay;
      else if (weight_decay != 0.f) g += weight_decay * p;
      float m = beta1 * exp_avg[i] + (1.f - beta1) * g;
      float v = beta2 * exp_avg_sq[i] + (1.f - beta2) * g * g;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      if (amsgrad) {
        v = std::max(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = v;
      }
      float denom = std::sqrt(v) / bc2_sqrt + eps;
      param[i] = p - step_size * (m / denom);
    }
  });
}

}  // namespace rg::cpu
