// The recurrent cells' per-element math, written once for the CPU (native/cpu/recurrent.cc) and the GPU
// (native/cuda/recurrent.cu): PyTorch's RNN (tanh, relu), LSTM and GRU cells with its gate order, and their
// derivatives. The kernels around them differ (loops over batch rows on the CPU, one map over B·H on the GPU), the
// arithmetic does not. `j` is the hidden unit, `g` a batch row of the step's gates ([G·H]), H the hidden size.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace rg::rnn {

enum Mode : int64_t { kTanh = 0, kRelu = 1, kLstm = 2, kGru = 3 };
// Gates per hidden unit, and the workspace kept per step in units of B·H (LSTM: 4 gates and the cell; GRU: 3 gates
// and the hidden projection of the n gate).
constexpr int64_t kGates[] = {1, 1, 4, 3};
constexpr int64_t kWs[] = {0, 0, 5, 4};

RG_HOST_DEVICE float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

// LSTM: g holds the pre-activations (i, f, g, o) and is left holding the activated gates; c = f·c_prev + i·g,
// h = o·tanh(c).
RG_HOST_DEVICE void lstm_forward(float* g, int64_t H, int64_t j, float cprev, float& c, float& h) {
  const float i = sigmoid(g[j]), f = sigmoid(g[H + j]), gg = tanhf(g[2 * H + j]), o = sigmoid(g[3 * H + j]);
  const float cv = f * cprev + i * gg;
  g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
  c = cv;
  h = o * tanhf(cv);
}

// GRU: g holds the hidden projection W_hh·h + b_hh (r, z, n parts), x the input projection; g is left holding the
// gates r, z, n and hn the n part of the hidden projection; h = (1 − z)·n + z·h_prev with n = tanh(x_n + r·hn).
RG_HOST_DEVICE void gru_forward(float* g, const float* x, int64_t H, int64_t j, float prev, float& hn, float& h) {
  const float r = sigmoid(x[j] + g[j]), z = sigmoid(x[H + j] + g[H + j]);
  const float hnv = g[2 * H + j], n = tanhf(x[2 * H + j] + r * hnv);
  g[j] = r, g[H + j] = z, g[2 * H + j] = n;
  hn = hnv;
  h = (1.f - z) * n + z * prev;
}

// The backward of one step, element (row, j): dy is the gradient reaching h (from the output and the later steps),
// dx the row of the pre-activations' gradients. Plain RNN: from the output h itself.
RG_HOST_DEVICE void simple_backward(int64_t mode, float dy, float h, float* dx, int64_t j) {
  dx[j] = mode == kTanh ? dy * (1.f - h * h) : (h > 0.f ? dy : 0.f);
}

// LSTM: gates are the activated (i, f, g, o); dc carries the cell's gradient to the step before.
RG_HOST_DEVICE void lstm_backward(const float* gates, int64_t H, int64_t j, float c, float cprev, float dy, float& dc, float* dx) {
  const float i = gates[j], f = gates[H + j], gg = gates[2 * H + j], o = gates[3 * H + j];
  const float tc = tanhf(c);
  const float dcell = dc + dy * o * (1.f - tc * tc);
  dx[j] = dcell * gg * i * (1.f - i);
  dx[H + j] = dcell * cprev * f * (1.f - f);
  dx[2 * H + j] = dcell * i * (1.f - gg * gg);
  dx[3 * H + j] = dy * tc * o * (1.f - o);
  dc = dcell * f;
}

// GRU: dx gets the input projection's gradients, dgh the hidden projection's (they differ in the n gate, scaled by
// r), dh the path to h_prev that skips the weights (the product with W_hh adds the rest).
RG_HOST_DEVICE void gru_backward(const float* gates, int64_t H, int64_t j, float hn, float prev, float dy, float* dx, float* dgh, float& dh) {
  const float r = gates[j], z = gates[H + j], n = gates[2 * H + j];
  const float dn = dy * (1.f - z) * (1.f - n * n);
  const float dr = dn * hn * r * (1.f - r), dz = dy * (prev - n) * z * (1.f - z);
  dx[j] = dgh[j] = dr;
  dx[H + j] = dgh[H + j] = dz;
  dx[2 * H + j] = dn;
  dgh[2 * H + j] = dn * r;
  dh = dy * z;
}

}  // namespace rg::rnn
