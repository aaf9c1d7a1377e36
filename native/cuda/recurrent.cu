// Recurrent layers on the GPU, with the formulas and layouts of native/cpu/recurrent.cc (the contract is in
// lib/backend.ts): per step, the hidden projection is one GEMM launch (b_hh in its epilogue) and the cell one
// elementwise launch over B·H; the backward runs the steps last to first the same way and ends with one GEMM over
// all steps for dW_hh and a column sum for db_hh. Everything is queued on the stream; nothing waits.
#include "../core/rnn_math.h"
#include "common.cuh"

namespace rg::cuda {

namespace {


Status copy_or_zero(ThreadPool& pool, float* dst, const float* src, int64_t n) {
  return src ? copy(pool, dst, src, n) : fill(pool, dst, n, 0.f);
}

// out[B, GH] = act(beta·out + h·W_hhᵀ + b_hh); without h (the zero initial state) no product is launched, so A is
// never read.
Status hidden_projection(ThreadPool& pool, float* out, const float* h, const float* w_hh, const float* b_hh, int64_t B, int64_t GH, int64_t H,
                         float beta, bool relu) {
  const Activation act = relu ? Activation::Relu : Activation::None;
  if (h) return gemm_ex(pool, false, true, B, GH, H, 1.f, h, w_hh, beta, out, b_hh, act, 0.f);
  return map("rnn_forward", B * GH, [=] __device__(int64_t i) {
    const float v = (beta != 0.f ? out[i] : 0.f) + (b_hh ? b_hh[i % GH] : 0.f);
    out[i] = relu && v < 0.f ? 0.f : v;
  });
}

}  // namespace

Status copy_range(ThreadPool& pool, float* out, const float* src, int64_t N, int64_t out_offset, int64_t src_offset) {
  return copy(pool, out + out_offset, src + src_offset, N);
}

Status rnn_forward(ThreadPool& pool, float* out, float* hN, float* cN, float* ws, const float* xproj, const float* w_hh, const float* b_hh,
                   const float* h0, const float* c0, int64_t T, int64_t B, int64_t H, int64_t mode) {
  const int64_t GH = rnn::kGates[mode] * H, BH = B * H, S = rnn::kWs[mode] * BH;
  Status s;
  for (int64_t t = 0; t < T && s.ok(); t++) {
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;
    const float* xp = xproj + t * B * GH;
    float* h = out + t * BH;
    if (mode == rnn::kTanh || mode == rnn::kRelu) {
      if (!(s = copy(pool, h, xp, BH)).ok()) break;
      if (!(s = hidden_projection(pool, h, hprev, w_hh, b_hh, B, H, H, 1.f, mode == rnn::kRelu)).ok()) break;
      if (mode == rnn::kTanh) s = map("rnn_forward", BH, [=] __device__(int64_t i) { h[i] = tanhf(h[i]); });
    } else if (mode == rnn::kLstm) {
      float* gates = ws + t * S;
      float* c = gates + 4 * BH;
      const float* cprev = t > 0 ? c - S : c0;
      if (!(s = copy(pool, gates, xp, B * GH)).ok()) break;
      if (!(s = hidden_projection(pool, gates, hprev, w_hh, b_hh, B, GH, H, 1.f, false)).ok()) break;
      s = map("rnn_forward", BH, [=] __device__(int64_t k) {
        const int64_t b = k / H, j = k % H;
        rnn::lstm_forward(gates + b * GH, H, j, cprev ? cprev[k] : 0.f, c[k], h[k]);
      });
    } else {
      float* gates = ws + t * S;
      float* hn = gates + 3 * BH;
      if (!(s = hidden_projection(pool, gates, hprev, w_hh, b_hh, B, GH, H, 0.f, false)).ok()) break;
      s = map("rnn_forward", BH, [=] __device__(int64_t k) {
        const int64_t b = k / H, j = k % H;
        rnn::gru_forward(gates + b * GH, xp + b * GH, H, j, hprev ? hprev[k] : 0.f, hn[k], h[k]);
      });
    }
  }
  if (!s.ok()) return s;
  if (!(s = copy_or_zero(pool, hN, T > 0 ? out + (T - 1) * BH : h0, BH)).ok()) return s;
  if (cN) s = copy_or_zero(pool, cN, T > 0 ? ws + (T - 1) * S + 4 * BH : c0, BH);
  return s;
}

Status rnn_backward(ThreadPool& pool, float* dxproj, float* dw_hh, float* db_hh, float* dh0, float* dc0, float* scratch, const float* dout,
                    const float* dhN, const float* dcN, const float* ws, const float* out, const float* w_hh, const float* h0, const float* c0,
                    int64_t T, int64_t B, int64_t H, int64_t mode, bool accumulate) {
  const int64_t GH = rnn::kGates[mode] * H, BH = B * H, S = rnn::kWs[mode] * BH;
  float* dh = scratch;
  float* dc = scratch + BH;
  float* dgh = mode == rnn::kGru ? scratch + 2 * BH : dxproj;
  Status s = copy_or_zero(pool, dh, dhN, BH);
  if (s.ok()) s = copy_or_zero(pool, dc, mode == rnn::kLstm ? dcN : nullptr, BH);
  for (int64_t t = T - 1; t >= 0 && s.ok(); t--) {
    float* dx = dxproj + t * B * GH;
    float* dg = dgh + t * B * GH;
    const float* hs = out + t * BH;
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;
    const float* dy = dout + t * BH;
    const float* wst = ws ? ws + t * S : nullptr;
    const float* cprev = mode == rnn::kLstm ? (t > 0 ? ws + (t - 1) * S + 4 * BH : c0) : nullptr;
    s = map("rnn_backward", BH, [=] __device__(int64_t k) {
      const int64_t b = k / H, j = k % H;
      const float g = dh[k] + dy[k];
      float* dxr = dx + b * GH;
      if (mode == rnn::kTanh || mode == rnn::kRelu) {
        rnn::simple_backward(mode, g, hs[k], dxr, j);
      } else if (mode == rnn::kLstm) {
        rnn::lstm_backward(wst + b * GH, H, j, wst[4 * BH + k], cprev ? cprev[k] : 0.f, g, dc[k], dxr);
      } else {
        rnn::gru_backward(wst + b * GH, H, j, wst[3 * BH + k], hprev ? hprev[k] : 0.f, g, dxr, dg + b * GH, dh[k]);
      }
    });
    if (s.ok() && (t > 0 || dh0)) s = gemm(pool, false, false, B, H, GH, 1.f, dg, w_hh, mode == rnn::kGru ? 1.f : 0.f, dh);
  }
  if (s.ok() && dh0) s = copy(pool, dh0, dh, BH);
  if (s.ok() && dc0) s = copy(pool, dc0, dc, BH);
  if (s.ok() && dw_hh) {
    bool added = accumulate;
    if (T > 1) {
      s = gemm(pool, true, false, GH, H, (T - 1) * B, 1.f, dgh + B * GH, out, added ? 1.f : 0.f, dw_hh);
      added = true;
    }
    if (s.ok() && T > 0 && h0) {
      s = gemm(pool, true, false, GH, H, B, 1.f, dgh, h0, added ? 1.f : 0.f, dw_hh);
      added = true;
    }
    if (s.ok() && !added) s = fill(pool, dw_hh, GH * H, 0.f);
  }
  if (s.ok() && db_hh) s = channel_sum(pool, db_hh, dgh, T * B, GH, 1, accumulate);
  return s;
}

}  // namespace rg::cuda
