// The optimizers' per-element updates, written once for the CPU loops (native/cpu/optim.cc) and the CUDA maps
// (native/cuda/optim.cu): PyTorch 1.13's single-tensor formulas to the letter. Each optimizer is a struct of the
// per-call constants (made on the host from the kernel's arguments) whose update() takes one element's parameter,
// state and gradient by reference. The structs are plain values, so a CUDA lambda captures them by copy, and the
// updates are always inlined, so the CPU loops still vectorise.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace rg::optim {

// torch/optim/sgd.py: g = ±grad + wd·p; buf = g on the first step, else momentum·buf + (1 − dampening)·g;
// g = g + momentum·buf (Nesterov) or buf; p −= lr·g.
struct Sgd {
  float lr, momentum, weight_decay, sign, keep, take;
  bool nesterov;
  static Sgd make(float lr, float momentum, float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
    // keep: the weight of the old buffer; take: that of the new gradient (the buffer starts zeroed, so the first
    // step reads 0·0)
    return {lr, momentum, weight_decay, maximize ? -1.f : 1.f, first_step ? 0.f : momentum, first_step ? 1.f : 1.f - dampening, nesterov};
  }
  // momentum == 0: no buffer
  RG_HOST_DEVICE void update(float& p, float grad) const { p -= lr * (sign * grad + weight_decay * p); }
  RG_HOST_DEVICE void update(float& p, float& buf, float grad) const {
    const float g = sign * grad + weight_decay * p;
    const float b = keep * buf + take * g;
    buf = b;
    p -= lr * (nesterov ? g + momentum * b : b);
  }
};

// torch/optim/adam.py (Adam, decoupled = false) and adamw.py (AdamW, decoupled = true): Adam adds wd·p to the
// gradient; AdamW multiplies p by (1 − lr·wd) first. m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²; vmax =
// max(vmax, v) with amsgrad; p −= lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + eps): eps outside the square root,
// after the bias correction, as PyTorch places it.
struct Adam {
  float beta1, beta2, eps, step_size, bc2_sqrt, decay, l2, sign;
  static Adam make(float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step, bool decoupled, bool maximize) {
    const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
    const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
    return {beta1, beta2, eps, static_cast<float>(lr / bc1), static_cast<float>(std::sqrt(bc2)), decoupled ? 1.f - lr * weight_decay : 1.f,
            decoupled ? 0.f : weight_decay, maximize ? -1.f : 1.f};
  }
  // The moments of this step: m and v updated, the new v returned.
  RG_HOST_DEVICE float moments(float p, float& m, float& v, float grad, float& mi) const {
    const float g = sign * grad + l2 * p;
    mi = beta1 * m + (1.f - beta1) * g;
    const float vi = beta2 * v + (1.f - beta2) * g * g;
    m = mi;
    v = vi;
    return vi;
  }
  RG_HOST_DEVICE void update(float& p, float& m, float& v, float grad) const {
    float mi;
    const float vi = moments(p, m, v, grad, mi);
    p = p * decay - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
  }
  RG_HOST_DEVICE void update(float& p, float& m, float& v, float& vmax, float grad) const {
    float mi;
    const float vi = moments(p, m, v, grad, mi);
    const float vm = vmax > vi ? vmax : vi;
    vmax = vm;
    p = p * decay - step_size * (mi / (sqrtf(vm) / bc2_sqrt + eps));
  }
};

// torch/optim/rmsprop.py: g = ±grad + wd·p; v = α v + (1 − α) g²; centered: m = α m + (1 − α) g and avg =
// √(v − m²), else avg = √v; avg += eps (outside the square root); momentum: buf = μ buf + g / avg, p −= lr·buf;
// else p −= lr·g / avg. Element i of m and buf is touched only when centered and momentum > 0 say so (either may
// be null otherwise).
struct Rmsprop {
  float lr, alpha, eps, weight_decay, momentum, sign;
  bool centered;
  static Rmsprop make(float lr, float alpha, float eps, float weight_decay, float momentum, bool centered, bool maximize) {
    return {lr, alpha, eps, weight_decay, momentum, maximize ? -1.f : 1.f, centered};
  }
  RG_HOST_DEVICE void update(float& p, float& v, float* m, float* buf, int64_t i, float grad) const {
    const float g = sign * grad + weight_decay * p;
    const float vi = alpha * v + (1.f - alpha) * g * g;
    v = vi;
    float avg;
    if (centered) {
      const float mi = alpha * m[i] + (1.f - alpha) * g;
      m[i] = mi;
      avg = sqrtf(vi - mi * mi) + eps;
    } else {
      avg = sqrtf(vi) + eps;
    }
    if (momentum > 0.f) {
      const float b = momentum * buf[i] + g / avg;
      buf[i] = b;
      p -= lr * b;
    } else {
      p -= lr * (g / avg);
    }
  }
};

// torch/optim/adagrad.py: g = ±grad + wd·p; sum += g²; p −= clr · g / (√sum + eps), with the decayed rate
// clr = lr / (1 + (step − 1)·lr_decay) computed by the caller.
struct Adagrad {
  float clr, eps, weight_decay, sign;
  static Adagrad make(float clr, float eps, float weight_decay, bool maximize) { return {clr, eps, weight_decay, maximize ? -1.f : 1.f}; }
  RG_HOST_DEVICE void update(float& p, float& sum, float grad) const {
    const float g = sign * grad + weight_decay * p;
    const float si = sum + g * g;
    sum = si;
    p -= clr * (g / (sqrtf(si) + eps));
  }
};

// torch/optim/adamax.py: g = ±grad + wd·p; m = β1 m + (1 − β1) g; u = max(β2 u, |g| + eps); p −= lr / (1 − β1^t) · m / u.
struct Adamax {
  float beta1, beta2, eps, weight_decay, clr, sign;
  static Adamax make(float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step, bool maximize) {
    const float clr = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step))));
    return {beta1, beta2, eps, weight_decay, clr, maximize ? -1.f : 1.f};
  }
  RG_HOST_DEVICE void update(float& p, float& m, float& u, float grad) const {
    const float g = sign * grad + weight_decay * p;
    const float mi = beta1 * m + (1.f - beta1) * g;
    const float a = beta2 * u, b = fabsf(g) + eps;
    const float ui = a > b ? a : b;
    m = mi;
    u = ui;
    p -= clr * (mi / ui);
  }
};

// torch/optim/adadelta.py: g = ±grad + wd·p; v = ρ v + (1 − ρ) g²; Δ = √(d + eps) / √(v + eps) · g;
// d = ρ d + (1 − ρ) Δ²; p −= lr · Δ.
struct Adadelta {
  float lr, rho, eps, weight_decay, sign;
  static Adadelta make(float lr, float rho, float eps, float weight_decay, bool maximize) { return {lr, rho, eps, weight_decay, maximize ? -1.f : 1.f}; }
  RG_HOST_DEVICE void update(float& p, float& v, float& d, float grad) const {
    const float g = sign * grad + weight_decay * p;
    const float vi = rho * v + (1.f - rho) * g * g;
    const float delta = sqrtf(d + eps) / sqrtf(vi + eps) * g;
    v = vi;
    d = rho * d + (1.f - rho) * delta * delta;
    p -= lr * delta;
  }
};

// torch/optim/nadam.py and radam.py share the moment updates m = β1 m + (1 − β1) g, v = β2 v + (1 − β2) g²
// (g = grad + wd·p); the per-step scalars (NAdam's momentum schedule, RAdam's rectification) come from the caller,
// so the update is p −= c_grad · g / (√(v / bc2) + eps) + c_avg · m / (√(v / bc2) + eps) for NAdam, and
// p −= c_avg · m · (rectified ? √bc2 / (√v + eps) : 1) for RAdam.
struct NadamRadam {
  float beta1, beta2, eps, weight_decay, bc2, bc2_sqrt, c_grad, c_avg;
  bool radam, rectified;
  static NadamRadam make(float beta1, float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg, bool radam, bool rectified) {
    return {beta1, beta2, eps, weight_decay, bc2, std::sqrt(bc2), c_grad, c_avg, radam, rectified};
  }
  RG_HOST_DEVICE void update(float& p, float& m, float& v, float grad) const {
    const float g = grad + weight_decay * p;
    const float mi = beta1 * m + (1.f - beta1) * g;
    const float vi = beta2 * v + (1.f - beta2) * g * g;
    m = mi;
    v = vi;
    if (!radam) {
      const float denom = sqrtf(vi / bc2) + eps;
      p = p - c_grad * (g / denom) - c_avg * (mi / denom);
    } else {
      p -= c_avg * mi * (rectified ? bc2_sqrt / (sqrtf(vi) + eps) : 1.f);
    }
  }
};

}  // namespace rg::optim
