// Optimizer updates on the GPU: a map per parameter over the per-element formulas of native/core/optim_math.h, the
// same code as the CPU's loops (native/cpu/optim.cc).
#include "../core/optim_math.h"
#include "common.cuh"

namespace rg::cuda {

Status sgd_step(ThreadPool&, float* param, float* momentum_buf, const float* grad, int64_t N, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
  const optim::Sgd u = optim::Sgd::make(lr, momentum, dampening, weight_decay, nesterov, maximize, first_step);
  if (momentum == 0.f) return map("sgd_step", N, [=] __device__(int64_t i) { u.update(param[i], grad[i]); });
  return map("sgd_step", N, [=] __device__(int64_t i) { u.update(param[i], momentum_buf[i], grad[i]); });
}

Status adam_step(ThreadPool&, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, int64_t N,
                 float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step, bool amsgrad, bool decoupled,
                 bool maximize) {
  const optim::Adam u = optim::Adam::make(lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize);
  if (amsgrad) return map("adam_step", N, [=] __device__(int64_t i) { u.update(param[i], exp_avg[i], exp_avg_sq[i], max_exp_avg_sq[i], grad[i]); });
  return map("adam_step", N, [=] __device__(int64_t i) { u.update(param[i], exp_avg[i], exp_avg_sq[i], grad[i]); });
}

Status rmsprop_step(ThreadPool&, float* param, float* square_avg, float* grad_avg, float* momentum_buf, const float* grad, int64_t N,
                    float lr, float alpha, float eps, float weight_decay, float momentum, bool centered, bool maximize) {
  const optim::Rmsprop u = optim::Rmsprop::make(lr, alpha, eps, weight_decay, momentum, centered, maximize);
  return map("rmsprop_step", N, [=] __device__(int64_t i) { u.update(param[i], square_avg[i], grad_avg, momentum_buf, i, grad[i]); });
}

Status adagrad_step(ThreadPool&, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                    float weight_decay, bool maximize) {
  const optim::Adagrad u = optim::Adagrad::make(clr, eps, weight_decay, maximize);
  return map("adagrad_step", N, [=] __device__(int64_t i) { u.update(param[i], state_sum[i], grad[i]); });
}

Status adamax_step(ThreadPool&, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int64_t step, bool maximize) {
  const optim::Adamax u = optim::Adamax::make(lr, beta1, beta2, eps, weight_decay, step, maximize);
  return map("adamax_step", N, [=] __device__(int64_t i) { u.update(param[i], exp_avg[i], exp_inf[i], grad[i]); });
}

Status adadelta_step(ThreadPool&, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N, float lr,
                     float rho, float eps, float weight_decay, bool maximize) {
  const optim::Adadelta u = optim::Adadelta::make(lr, rho, eps, weight_decay, maximize);
  return map("adadelta_step", N, [=] __device__(int64_t i) { u.update(param[i], square_avg[i], acc_delta[i], grad[i]); });
}

Status nadam_radam_step(ThreadPool&, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N, float beta1,
                        float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg, bool radam,
                        bool rectified) {
  const optim::NadamRadam u = optim::NadamRadam::make(beta1, beta2, eps, weight_decay, bc2, c_grad, c_avg, radam, rectified);
  return map("nadam_radam_step", N, [=] __device__(int64_t i) { u.update(param[i], exp_avg[i], exp_avg_sq[i], grad[i]); });
}

}  // namespace rg::cuda
