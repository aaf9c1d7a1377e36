// Optimizer updates, PyTorch 1.13's single-tensor formulas to the letter, one pass over memory per
// parameter. param and the optimizer state are updated in place; grad is read only.
// The loops are branch-free (flags become per-call constants and selects) over __restrict pointers, so
// they vectorise through dispatch() for the CPU's widest vectors.
#include <cmath>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 16384;
}

// torch/optim/sgd.py: g = ±grad + wd·p; buf = g on the first step, else momentum·buf + (1 − dampening)·g;
// g = g + momentum·buf (Nesterov) or buf; p −= lr·g. momentum_buf may be null when momentum == 0.
void sgd_step(ThreadPool& pool, float* param, float* momentum_buf, const float* grad, int64_t N, float lr,
              float momentum, float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
  const float sign = maximize ? -1.f : 1.f;
  const float keep = first_step ? 0.f : momentum;         // weight of the old buffer
  const float take = first_step ? 1.f : 1.f - dampening;  // weight of the new gradient
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict buf = momentum_buf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      if (momentum == 0.f) {
        for (int64_t i = i0; i < i1; i++) p[i] -= lr * (sign * gr[i] + weight_decay * p[i]);
        return;
      }
      for (int64_t i = i0; i < i1; i++) {
        const float g = sign * gr[i] + weight_decay * p[i];
        const float b = keep * buf[i] + take * g;  // the buffer starts zeroed, so the first step reads 0·0
        buf[i] = b;
        p[i] -= lr * (nesterov ? g + momentum * b : b);
      }
    });
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
  const float decay = decoupled ? 1.f - lr * weight_decay : 1.f;  // AdamW
  const float l2 = decoupled ? 0.f : weight_decay;                 // Adam
  const float sign = maximize ? -1.f : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
    float* __restrict vmax = max_exp_avg_sq;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      if (amsgrad) {
        for (int64_t i = i0; i < i1; i++) {
          const float pi = p[i] * decay;
          const float g = sign * gr[i] + l2 * p[i];
          const float mi = beta1 * m[i] + (1.f - beta1) * g;
          const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
          const float vm = vmax[i] > vi ? vmax[i] : vi;
          m[i] = mi;
          v[i] = vi;
          vmax[i] = vm;
          p[i] = pi - step_size * (mi / (std::sqrt(vm) / bc2_sqrt + eps));
        }
        return;
      }
      for (int64_t i = i0; i < i1; i++) {
        const float pi = p[i] * decay;
        const float g = sign * gr[i] + l2 * p[i];
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
      }
    });
  });
}

// torch/optim/rmsprop.py: g = ±grad + wd·p; v = α v + (1 − α) g²; centered: m = α m + (1 − α) g and
// avg = √(v − m²), else avg = √v; avg += eps (outside the square root); momentum: buf = μ buf + g / avg,
// p −= lr·buf; else p −= lr·g / avg. grad_avg and momentum_buf may be null when unused.
void rmsprop_step(ThreadPool& pool, float* param, float* square_avg, float* grad_avg, float* momentum_buf,
                  const float* grad, int64_t N, float lr, float alpha, float eps, float weight_decay, float momentum,
                  bool centered, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict v = square_avg;
    float* __restrict m = grad_avg;
    float* __restrict buf = momentum_buf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float g = sign * gr[i] + weight_decay * p[i];
        const float vi = alpha * v[i] + (1.f - alpha) * g * g;
        v[i] = vi;
        float avg;
        if (centered) {
          const float mi = alpha * m[i] + (1.f - alpha) * g;
          m[i] = mi;
          avg = std::sqrt(vi - mi * mi) + eps;
        } else {
          avg = std::sqrt(vi) + eps;
        }
        if (momentum > 0.f) {
          const float b = momentum * buf[i] + g / avg;
          buf[i] = b;
          p[i] -= lr * b;
        } else {
          p[i] -= lr * (g / avg);
        }
      }
    });
  });
}

// torch/optim/adagrad.py: g = ±grad + wd·p; sum += g²; p −= clr · g / (√sum + eps), with the decayed rate
// clr = lr / (1 + (step − 1)·lr_decay) computed by the caller.
void adagrad_step(ThreadPool& pool, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                  float weight_decay, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict sum = state_sum;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float g = sign * gr[i] + weight_decay * p[i];
        const float si = sum[i] + g * g;
        sum[i] = si;
        p[i] -= clr * (g / (std::sqrt(si) + eps));
      }
    });
  });
}

// torch/optim/adamax.py: g = ±grad + wd·p; m = β1 m + (1 − β1) g; u = max(β2 u, |g| + eps);
// p −= lr / (1 − β1^t) · m / u.
void adamax_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int64_t step, bool maximize) {
  const float clr = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step))));
  const float sign = maximize ? -1.f : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict u = exp_inf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float g = sign * gr[i] + weight_decay * p[i];
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float a = beta2 * u[i], b = std::fabs(g) + eps;
        const float ui = a > b ? a : b;
        m[i] = mi;
        u[i] = ui;
        p[i] -= clr * (mi / ui);
      }
    });
  });
}

// torch/optim/adadelta.py: g = ±grad + wd·p; v = ρ v + (1 − ρ) g²; Δ = √(d + eps) / √(v + eps) · g;
// d = ρ d + (1 − ρ) Δ²; p −= lr · Δ.
void adadelta_step(ThreadPool& pool, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N,
                   float lr, float rho, float eps, float weight_decay, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict v = square_avg;
    float* __restrict d = acc_delta;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float g = sign * gr[i] + weight_decay * p[i];
        const float vi = rho * v[i] + (1.f - rho) * g * g;
        const float delta = std::sqrt(d[i] + eps) / std::sqrt(vi + eps) * g;
        v[i] = vi;
        d[i] = rho * d[i] + (1.f - rho) * delta * delta;
        p[i] -= lr * delta;
      }
    });
  });
}

// torch/optim/nadam.py and radam.py share the moment updates m = β1 m + (1 − β1) g, v = β2 v + (1 − β2) g²
// (g = grad + wd·p); the per-step scalars (NAdam's momentum schedule, RAdam's rectification) come from the
// caller, so the kernel is p −= c_grad · g / (√(v / bc2) + eps) + c_avg · m / (√(v / bc2) + eps) for NAdam
// (rectified = false), and p −= c_avg · m · (rectified ? √bc2 / (√v + eps) : 1) for RAdam.
void nadam_radam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N,
                      float beta1, float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg,
                      bool radam, bool rectified) {
  const float bc2_sqrt = std::sqrt(bc2);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float g = gr[i] + weight_decay * p[i];
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        if (!radam) {
          const float denom = std::sqrt(vi / bc2) + eps;
          p[i] = p[i] - c_grad * (g / denom) - c_avg * (mi / denom);
        } else {
          p[i] -= c_avg * mi * (rectified ? bc2_sqrt / (std::sqrt(vi) + eps) : 1.f);
        }
      }
    });
  });
}

}  // namespace rg::cpu
