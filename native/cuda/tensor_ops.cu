// Tensor utilities on the GPU, as native/cpu/tensor_ops.cc: fills and copies, norms and clipping, penalties,
// row gathers, accuracy counts and the finite-value check.
#include <climits>

#include "common.cuh"

namespace rg::cuda {

namespace {

// count[0] += rows whose first largest logit is at the target: a warp per row.
__global__ void accuracy_kernel(float* count, const float* logits, const int32_t* target, int64_t B, int64_t C) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  double correct = 0;
  RG_FOR_ROWS(b, B) {
    const float* x = logits + b * C;
    float best = -INFINITY;
    int64_t at = C;  // no candidate yet
    for (int64_t c = lane; c < C; c += 32)
      if (at == C || x[c] > best) best = x[c], at = c;
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oa = __shfl_xor_sync(0xffffffffu, at, o);
      if (oa != C && (at == C || ob > best || (ob == best && oa < at))) best = ob, at = oa;
    }
    if (lane == 0 && at == target[b]) correct += 1;
  }
  correct = block_reduce<false>(correct);
  if (threadIdx.x == 0 && correct > 0) atomicAdd(count, static_cast<float>(correct));  // whole numbers: exact
}

}  // namespace

Status fill(ThreadPool&, float* out, int64_t N, float value) {
  return map("fill", N, [=] __device__(int64_t i) { out[i] = value; });
}
Status copy(ThreadPool&, void* out, const void* src, int64_t N) {
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* s = static_cast<const uint32_t*>(src);
  return map("copy", N, [=] __device__(int64_t i) { o[i] = s[i]; });
}
Status axpy(ThreadPool&, float* out, const float* src, int64_t N, float alpha) {
  return map("axpy", N, [=] __device__(int64_t i) { out[i] += alpha * src[i]; });
}

Status gather_rows(ThreadPool&, void* out, const void* src, const int32_t* index, int64_t rows, int64_t cols, int64_t src_rows,
                   int64_t index_offset) {
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* s = static_cast<const uint32_t*>(src);
  const int32_t* idx = index + index_offset;
  return map("gather_rows", rows * cols, [=] __device__(int64_t e) {
    const int64_t r = e / cols, c = e % cols;
    const int64_t from = idx[r];
    if (from < 0 || from >= src_rows) {
      record_failure(kRowIndex, from, r, src_rows, 0);
      return;
    }
    o[e] = s[from * cols + c];
  });
}

Status norm_accumulate(ThreadPool&, float* acc, const float* x, int64_t N, bool inf_norm) {
  if (inf_norm) return reduce<true>("norm_accumulate", N, [=] __device__(int64_t i) { return static_cast<double>(fabsf(x[i])); }, acc, Into::Max);
  return reduce("norm_accumulate", N, [=] __device__(int64_t i) { return static_cast<double>(x[i]) * x[i]; }, acc, Into::Add);
}

Status clip_by_norm(ThreadPool&, float* x, const float* acc, int64_t N, float max_norm, bool inf_norm) {
  return map("clip_by_norm", N, [=] __device__(int64_t i) {
    const float total = inf_norm ? acc[0] : sqrtf(acc[0]);
    x[i] *= fminf(1.f, max_norm / (total + 1e-6f));
  });
}

Status clamp(ThreadPool&, float* x, int64_t N, float lo, float hi) {
  return map("clamp", N, [=] __device__(int64_t i) { x[i] = isnan(x[i]) ? x[i] : fminf(fmaxf(x[i], lo), hi); });  // fmaxf drops NaN
}

Status penalty(ThreadPool&, float* acc, float* grad, const float* w, int64_t N, float l1, float l2) {
  return reduce("penalty", N, [=] __device__(int64_t i) {
    const float wi = w[i];
    grad[i] += l1 * static_cast<float>((wi > 0.f) - (wi < 0.f)) + 2.f * l2 * wi;
    return static_cast<double>(l1) * fabsf(wi) + static_cast<double>(l2) * wi * wi;
  }, acc, Into::Add);
}

Status accuracy_count(ThreadPool&, float* count, const float* logits, const int32_t* target, int64_t B, int64_t C) {
  if (B <= 0 || C <= 0) return Status::Ok();
  accuracy_kernel<<<row_blocks(B), kThreads, 0, g_stream>>>(count, logits, target, B, C);
  return launched("accuracy_count");
}

// check_finite: the smallest index of a NaN or infinity by integer atomicMin (order-independent, so deterministic),
// then one thread writes it (or -1) and, with tag >= 0, records the failure that stops the kernels after it.
__global__ void first_nonfinite_kernel(int* first, const float* x, int64_t N) {
  RG_GUARD();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < N; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!isfinite(x[i])) atomicMin(first, static_cast<int>(i));
}
// With tag >= 0, an index left by an earlier failed check fails this one at once (RG_GUARD then stops the rest).
__global__ void sticky_nonfinite_kernel(const int* first, int64_t tag) {
  RG_GUARD();
  if (first[0] >= 0) record_failure(kNonFinite, tag, first[0], 1, 0.0);
}
__global__ void finish_nonfinite_kernel(int* first, const float* x, int64_t tag) {
  RG_GUARD();
  if (first[0] == INT_MAX) {
    first[0] = -1;
  } else if (tag >= 0) {
    record_failure(kNonFinite, tag, first[0], 0, static_cast<double>(x[first[0]]));
  }
}

Status check_finite(ThreadPool&, int32_t* first, const float* x, int64_t N, int64_t tag) {
  int* f = reinterpret_cast<int*>(first);
  if (tag >= 0) {
    sticky_nonfinite_kernel<<<1, 1, 0, g_stream>>>(f, tag);
    Status sticky = launched("check_finite");
    if (!sticky.ok()) return sticky;
  }
  Status s = map("check_finite", 1, [=] __device__(int64_t) { f[0] = INT_MAX; });
  if (!s.ok()) return s;
  if (N > 0) {
    first_nonfinite_kernel<<<blocks_for(N), kThreads, 0, g_stream>>>(f, x, N);
    s = launched("check_finite");
    if (!s.ok()) return s;
  }
  finish_nonfinite_kernel<<<1, 1, 0, g_stream>>>(f, x, tag);
  return launched("check_finite");
}

}  // namespace rg::cuda
