// Optimizer updates, one pass over memory per parameter: the per-element formulas of native/core/optim_math.h
// (shared with the CUDA kernels) in loops over __restrict pointers that vectorise through dispatch() for the
// CPU's widest vectors. param and the optimizer state are updated in place; grad is read only.
#include <cmath>

#include "../core/optim_math.h"
#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 16384;
}

// momentum_buf may be null when momentum == 0.
void sgd_step(ThreadPool& pool, float* param, float* momentum_buf, const float* grad, int64_t N, float lr,
              float momentum, float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
  const optim::Sgd u = optim::Sgd::make(lr, momentum, dampening, weight_decay, nesterov, maximize, first_step);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict buf = momentum_buf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      if (momentum == 0.f) {
        for (int64_t i = i0; i < i1; i++) u.update(p[i], gr[i]);
        return;
      }
      for (int64_t i = i0; i < i1; i++) u.update(p[i], buf[i], gr[i]);
    });
  });
}

void adam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const float* grad, int64_t N, float lr, float beta1, float beta2, float eps, float weight_decay,
               int64_t step, bool amsgrad, bool decoupled, bool maximize) {
  const optim::Adam u = optim::Adam::make(lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
    float* __restrict vmax = max_exp_avg_sq;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      if (amsgrad) {
        for (int64_t i = i0; i < i1; i++) u.update(p[i], m[i], v[i], vmax[i], gr[i]);
        return;
      }
      for (int64_t i = i0; i < i1; i++) u.update(p[i], m[i], v[i], gr[i]);
    });
  });
}

// grad_avg and momentum_buf may be null when unused.
void rmsprop_step(ThreadPool& pool, float* param, float* square_avg, float* grad_avg, float* momentum_buf,
                  const float* grad, int64_t N, float lr, float alpha, float eps, float weight_decay, float momentum,
                  bool centered, bool maximize) {
  const optim::Rmsprop u = optim::Rmsprop::make(lr, alpha, eps, weight_decay, momentum, centered, maximize);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict v = square_avg;
    float* __restrict m = grad_avg;
    float* __restrict buf = momentum_buf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) u.update(p[i], v[i], m, buf, i, gr[i]);
    });
  });
}

void adagrad_step(ThreadPool& pool, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                  float weight_decay, bool maximize) {
  const optim::Adagrad u = optim::Adagrad::make(clr, eps, weight_decay, maximize);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict sum = state_sum;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) u.update(p[i], sum[i], gr[i]);
    });
  });
}

void adamax_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int64_t step, bool maximize) {
  const optim::Adamax u = optim::Adamax::make(lr, beta1, beta2, eps, weight_decay, step, maximize);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict inf = exp_inf;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) u.update(p[i], m[i], inf[i], gr[i]);
    });
  });
}

void adadelta_step(ThreadPool& pool, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N,
                   float lr, float rho, float eps, float weight_decay, bool maximize) {
  const optim::Adadelta u = optim::Adadelta::make(lr, rho, eps, weight_decay, maximize);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict v = square_avg;
    float* __restrict d = acc_delta;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) u.update(p[i], v[i], d[i], gr[i]);
    });
  });
}

void nadam_radam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N,
                      float beta1, float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg,
                      bool radam, bool rectified) {
  const optim::NadamRadam u = optim::NadamRadam::make(beta1, beta2, eps, weight_decay, bc2, c_grad, c_avg, radam, rectified);
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    float* __restrict p = param;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
    const float* __restrict gr = grad;
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) u.update(p[i], m[i], v[i], gr[i]);
    });
  });
}

}  // namespace rg::cpu
