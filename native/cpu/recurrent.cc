// Recurrent layers on the CPU: one RNN / LSTM / GRU layer over a whole sequence per call, forward and backward
// through time (the contract and the layouts are in lib/backend.ts). The input projection of every step was one
// GEMM before the call; here each step adds the hidden projection h_{t−1}·W_hhᵀ (+ b_hh, in the GEMM's epilogue)
// and applies the cell, a parallel loop over the batch rows. The backward runs the steps last to first with one
// [B, G·H] × [G·H, H] product per step for dh_{t−1}; the weight gradient of every step is one product at the end,
// over all T·B rows at once.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/rnn_math.h"
#include "kernels.h"

namespace rg::cpu {

namespace {

using namespace rnn;

// Rows per range of the per-step cell loops: about 16k values.
int64_t row_grain(int64_t H) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, H)); }

}  // namespace

void rnn_forward(ThreadPool& pool, float* out, float* hN, float* cN, float* ws, const float* xproj, const float* w_hh, const float* b_hh,
                 const float* h0, const float* c0, int64_t T, int64_t B, int64_t H, int64_t mode) {
  const int64_t GH = kGates[mode] * H, BH = B * H, S = kWs[mode] * BH;
  for (int64_t t = 0; t < T; t++) {
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;  // null: the zero state
    const float* xp = xproj + t * B * GH;
    float* h = out + t * BH;
    const float alpha = hprev ? 1.f : 0.f;
    if (mode == kTanh || mode == kRelu) {
      std::memcpy(h, xp, static_cast<size_t>(BH) * 4);
      gemm_ex(pool, false, true, B, H, H, alpha, hprev, w_hh, 1.f, h, b_hh, mode == kRelu ? Activation::Relu : Activation::None, 0.f);
      if (mode == kTanh)
        pool.parallel_for(BH, 16384, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; i++) h[i] = std::tanh(h[i]);
        });
    } else if (mode == kLstm) {
      float* gates = ws + t * S;  // [B, 4H] pre-activations, then the activated gates in place
      float* c = gates + 4 * BH;  // [B, H]
      const float* cprev = t > 0 ? c - S : c0;
      std::memcpy(gates, xp, static_cast<size_t>(B * GH) * 4);
      gemm_ex(pool, false, true, B, GH, H, alpha, hprev, w_hh, 1.f, gates, b_hh, Activation::None, 0.f);
      pool.parallel_for(B, row_grain(H), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; b++) {
          float* g = gates + b * GH;
          for (int64_t j = 0; j < H; j++) lstm_forward(g, H, j, cprev ? cprev[b * H + j] : 0.f, c[b * H + j], h[b * H + j]);
        }
      });
    } else {
      float* gates = ws + t * S;  // [B, 3H]: the hidden projection, then r, z, n in place
      float* hn = gates + 3 * BH;  // [B, H]
      gemm_ex(pool, false, true, B, GH, H, alpha, hprev, w_hh, 0.f, gates, b_hh, Activation::None, 0.f);
      pool.parallel_for(B, row_grain(H), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; b++) {
          float* g = gates + b * GH;
          const float* x = xp + b * GH;
          for (int64_t j = 0; j < H; j++) gru_forward(g, x, H, j, hprev ? hprev[b * H + j] : 0.f, hn[b * H + j], h[b * H + j]);
        }
      });
    }
  }
  auto last_or_initial = [&](float* dst, const float* last, const float* initial) {
    if (T > 0) std::memcpy(dst, last, static_cast<size_t>(BH) * 4);
    else if (initial) std::memcpy(dst, initial, static_cast<size_t>(BH) * 4);
    else std::memset(dst, 0, static_cast<size_t>(BH) * 4);
  };
  last_or_initial(hN, out + (T - 1) * BH, h0);
  if (cN) last_or_initial(cN, ws + (T - 1) * S + 4 * BH, c0);
}

void rnn_backward(ThreadPool& pool, float* dxproj, float* dw_hh, float* db_hh, float* dh0, float* dc0, float* scratch, const float* dout,
                  const float* dhN, const float* dcN, const float* ws, const float* out, const float* w_hh, const float* h0, const float* c0,
                  int64_t T, int64_t B, int64_t H, int64_t mode, bool accumulate) {
  const int64_t GH = kGates[mode] * H, BH = B * H, S = kWs[mode] * BH;
  float* dh = scratch;       // [B, H]: the gradient reaching h_t from the later steps
  float* dc = scratch + BH;  // [B, H]: the same for the LSTM's cell
  // the gradients of the hidden projection's pre-activations, every step: the same as dxproj but for GRU's n gate
  float* dgh = mode == kGru ? scratch + 2 * BH : dxproj;
  auto init = [&](float* dst, const float* src) {
    if (src) std::memcpy(dst, src, static_cast<size_t>(BH) * 4);
    else std::memset(dst, 0, static_cast<size_t>(BH) * 4);
  };
  init(dh, dhN);
  init(dc, mode == kLstm ? dcN : nullptr);
  for (int64_t t = T - 1; t >= 0; t--) {
    float* dx = dxproj + t * B * GH;
    float* dg = dgh + t * B * GH;
    const float* hs = out + t * BH;
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;
    const float* dy = dout + t * BH;
    pool.parallel_for(B, row_grain(H), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) {
        for (int64_t j = 0; j < H; j++) {
          const int64_t k = b * H + j;
          const float g = dh[k] + dy[k];
          float* dxr = dx + b * GH;
          if (mode == kTanh || mode == kRelu) {
            simple_backward(mode, g, hs[k], dxr, j);
          } else if (mode == kLstm) {
            const float cprev = t > 0 ? ws[(t - 1) * S + 4 * BH + k] : c0 ? c0[k] : 0.f;
            lstm_backward(ws + t * S + b * GH, H, j, ws[t * S + 4 * BH + k], cprev, g, dc[k], dxr);
          } else {
            gru_backward(ws + t * S + b * GH, H, j, ws[t * S + 3 * BH + k], hprev ? hprev[k] : 0.f, g, dxr, dg + b * GH, dh[k]);
          }
        }
      }
    });
    // dh_{t−1} = dgates_h·W_hh (+ GRU's direct path); at t = 0 only when dh0 is wanted
    if (t > 0 || dh0) gemm(pool, false, false, B, H, GH, 1.f, dg, w_hh, mode == kGru ? 1.f : 0.f, dh);
  }
  if (dh0) init(dh0, dh);
  if (dc0) init(dc0, dc);
  if (dw_hh) {
    // Σ_t dgates_h[t]ᵀ·h_{t−1}: steps 1… against out[0 … T−2] in one product, step 0 against h0
    bool added = accumulate;
    if (T > 1) {
      gemm(pool, true, false, GH, H, (T - 1) * B, 1.f, dgh + B * GH, out, added ? 1.f : 0.f, dw_hh);
      added = true;
    }
    if (T > 0 && h0) {
      gemm(pool, true, false, GH, H, B, 1.f, dgh, h0, added ? 1.f : 0.f, dw_hh);
      added = true;
    }
    if (!added) std::memset(dw_hh, 0, static_cast<size_t>(GH * H) * 4);
  }
  if (db_hh) channel_sum(pool, db_hh, dgh, T * B, GH, 1, accumulate);
}

}  // namespace rg::cpu
