// Recurrent layers on the GPU, with the formulas and layouts of native/cpu/recurrent.cc (the contract is in
// lib/backend.ts): per step, the hidden projection is one GEMM launch (b_hh in its epilogue) and the cell one
// elementwise launch over B·H; the backward runs the steps last to first the same way and ends with one GEMM over
// all steps for dW_hh and a column sum for db_hh. Everything is queued on the stream; nothing waits. Included at
// the end of kernels.cu.
#pragma once

namespace rg::cuda {

namespace {

constexpr int64_t kRnnGates[] = {1, 1, 4, 3};
constexpr int64_t kRnnWs[] = {0, 0, 5, 4};

__device__ __forceinline__ float sigmoidf(float v) { return 1.f / (1.f + expf(-v)); }

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
  const int64_t GH = kRnnGates[mode] * H, BH = B * H, S = kRnnWs[mode] * BH;
  Status s;
  for (int64_t t = 0; t < T && s.ok(); t++) {
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;
    const float* xp = xproj + t * B * GH;
    float* h = out + t * BH;
    if (mode == 0 || mode == 1) {
      if (!(s = copy(pool, h, xp, BH)).ok()) break;
      if (!(s = hidden_projection(pool, h, hprev, w_hh, b_hh, B, H, H, 1.f, mode == 1)).ok()) break;
      if (mode == 0) s = map("rnn_forward", BH, [=] __device__(int64_t i) { h[i] = tanhf(h[i]); });
    } else if (mode == 2) {
      float* gates = ws + t * S;
      float* c = gates + 4 * BH;
      const float* cprev = t > 0 ? c - S : c0;
      if (!(s = copy(pool, gates, xp, B * GH)).ok()) break;
      if (!(s = hidden_projection(pool, gates, hprev, w_hh, b_hh, B, GH, H, 1.f, false)).ok()) break;
      s = map("rnn_forward", BH, [=] __device__(int64_t k) {
        const int64_t b = k / H, j = k % H;
        float* g = gates + b * GH;
        const float i = sigmoidf(g[j]), f = sigmoidf(g[H + j]), gg = tanhf(g[2 * H + j]), o = sigmoidf(g[3 * H + j]);
        const float cv = f * (cprev ? cprev[k] : 0.f) + i * gg;
        g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
        c[k] = cv;
        h[k] = o * tanhf(cv);
      });
    } else {
      float* gates = ws + t * S;
      float* hn = gates + 3 * BH;
      if (!(s = hidden_projection(pool, gates, hprev, w_hh, b_hh, B, GH, H, 0.f, false)).ok()) break;
      s = map("rnn_forward", BH, [=] __device__(int64_t k) {
        const int64_t b = k / H, j = k % H;
        float* g = gates + b * GH;
        const float* x = xp + b * GH;
        const float r = sigmoidf(x[j] + g[j]), z = sigmoidf(x[H + j] + g[H + j]);
        const float hnv = g[2 * H + j], n = tanhf(x[2 * H + j] + r * hnv);
        const float prev = hprev ? hprev[k] : 0.f;
        g[j] = r, g[H + j] = z, g[2 * H + j] = n;
        hn[k] = hnv;
        h[k] = (1.f - z) * n + z * prev;
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
  const int64_t GH = kRnnGates[mode] * H, BH = B * H, S = kRnnWs[mode] * BH;
  float* dh = scratch;
  float* dc = scratch + BH;
  float* dgh = mode == 3 ? scratch + 2 * BH : dxproj;
  Status s = copy_or_zero(pool, dh, dhN, BH);
  if (s.ok()) s = copy_or_zero(pool, dc, mode == 2 ? dcN : nullptr, BH);
  for (int64_t t = T - 1; t >= 0 && s.ok(); t--) {
    float* dx = dxproj + t * B * GH;
    float* dg = dgh + t * B * GH;
    const float* hs = out + t * BH;
    const float* hprev = t > 0 ? out + (t - 1) * BH : h0;
    const float* dy = dout + t * BH;
    const float* wst = ws ? ws + t * S : nullptr;
    const float* cprev = mode == 2 ? (t > 0 ? ws + (t - 1) * S + 4 * BH : c0) : nullptr;
    s = map("rnn_backward", BH, [=] __device__(int64_t k) {
      const int64_t b = k / H, j = k % H;
      const float g = dh[k] + dy[k];
      float* dxr = dx + b * GH;
      if (mode == 0) {
        dxr[j] = g * (1.f - hs[k] * hs[k]);
      } else if (mode == 1) {
        dxr[j] = hs[k] > 0.f ? g : 0.f;
      } else if (mode == 2) {
        const float* gates = wst + b * GH;
        const float i = gates[j], f = gates[H + j], gg = gates[2 * H + j], o = gates[3 * H + j];
        const float tc = tanhf(wst[4 * BH + k]);
        const float cp = cprev ? cprev[k] : 0.f;
        const float dcell = dc[k] + g * o * (1.f - tc * tc);
        dxr[j] = dcell * gg * i * (1.f - i);
        dxr[H + j] = dcell * cp * f * (1.f - f);
        dxr[2 * H + j] = dcell * i * (1.f - gg * gg);
        dxr[3 * H + j] = g * tc * o * (1.f - o);
        dc[k] = dcell * f;
      } else {
        const float* gates = wst + b * GH;
        const float r = gates[j], z = gates[H + j], n = gates[2 * H + j], hn = wst[3 * BH + k];
        const float prev = hprev ? hprev[k] : 0.f;
        const float dn = g * (1.f - z) * (1.f - n * n);
        const float dr = dn * hn * r * (1.f - r), dz = g * (prev - n) * z * (1.f - z);
        float* dgr = dg + b * GH;
        dxr[j] = dgr[j] = dr;
        dxr[H + j] = dgr[H + j] = dz;
        dxr[2 * H + j] = dn;
        dgr[2 * H + j] = dn * r;
        dh[k] = g * z;
      }
    });
    if (s.ok() && (t > 0 || dh0)) s = gemm(pool, false, false, B, H, GH, 1.f, dg, w_hh, mode == 3 ? 1.f : 0.f, dh);
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
