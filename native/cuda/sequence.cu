// Sequence-model kernels on the GPU, with the sums of native/cpu/sequence.cc: the embedding gradient adds each
// column's rows in ascending order (a thread per column, so repeated indices need no atomics and results repeat);
// layer normalisation takes a warp per row, and its dweight / dbias a thread column per feature.
#include "common.cuh"

namespace rg::cuda {

namespace {

__global__ void embedding_backward_kernel(float* dweight, const int32_t* index, const float* dout, int64_t rows, int64_t dim) {
  RG_GUARD();
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= dim) return;
  for (int64_t r = 0; r < rows; r++) dweight[index[r] * dim + c] += dout[r * dim + c];
}

__device__ double warp_total(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void layernorm_forward_kernel(float* out, float* save_mean, float* save_invstd, const float* inp, const float* weight,
                                         const float* bias, int64_t rows, int64_t dim, float eps) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * (blockDim.x / 32)) {
    const float* x = inp + r * dim;
    double sum = 0;
    for (int64_t d = lane; d < dim; d += 32) sum += x[d];
    const double m = warp_total(sum) / static_cast<double>(dim);
    double sq = 0;
    for (int64_t d = lane; d < dim; d += 32) sq += (x[d] - m) * (x[d] - m);
    const float mean = static_cast<float>(m);
    const float invstd = static_cast<float>(1.0 / sqrt(warp_total(sq) / static_cast<double>(dim) + static_cast<double>(eps)));
    if (lane == 0) save_mean[r] = mean, save_invstd[r] = invstd;
    float* y = out + r * dim;
    for (int64_t d = lane; d < dim; d += 32) y[d] = (x[d] - mean) * invstd * (weight ? weight[d] : 1.f) + (bias ? bias[d] : 0.f);
  }
}

__global__ void layernorm_dinp_kernel(float* dinp, const float* dout, const float* inp, const float* weight, const float* save_mean,
                                      const float* save_invstd, int64_t rows, int64_t dim) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * (blockDim.x / 32)) {
    const float* x = inp + r * dim;
    const float* dy = dout + r * dim;
    const float mean = save_mean[r], invstd = save_invstd[r];
    double sg = 0, sgx = 0;
    for (int64_t d = lane; d < dim; d += 32) {
      const float g = dy[d] * (weight ? weight[d] : 1.f);
      sg += g;
      sgx += static_cast<double>(g) * ((x[d] - mean) * invstd);
    }
    const float mg = static_cast<float>(warp_total(sg) / static_cast<double>(dim));
    const float mgx = static_cast<float>(warp_total(sgx) / static_cast<double>(dim));
    for (int64_t d = lane; d < dim; d += 32) {
      const float g = dy[d] * (weight ? weight[d] : 1.f);
      dinp[r * dim + d] = invstd * (g - mg - (x[d] - mean) * invstd * mgx);
    }
  }
}

// dweight / dbias: a block takes 32 features, its 8 thread rows split the rows, the 8 partial sums added in order.
__global__ void layernorm_params_kernel(float* dweight, float* dbias, const float* dout, const float* inp, const float* save_mean,
                                        const float* save_invstd, int64_t rows, int64_t dim, bool accumulate) {
  RG_GUARD();
  __shared__ double pw[8][33], pb[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  double sw = 0, sb = 0;
  if (c < dim)
    for (int64_t r = threadIdx.y; r < rows; r += 8) {
      const float dy = dout[r * dim + c];
      sw += static_cast<double>(dy) * ((inp[r * dim + c] - save_mean[r]) * save_invstd[r]);
      sb += dy;
    }
  pw[threadIdx.y][threadIdx.x] = sw;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y != 0 || c >= dim) return;
  double tw = 0, tb = 0;
  for (int i = 0; i < 8; i++) tw += pw[i][threadIdx.x], tb += pb[i][threadIdx.x];
  if (dweight) dweight[c] = (accumulate ? dweight[c] : 0.f) + static_cast<float>(tw);
  if (dbias) dbias[c] = (accumulate ? dbias[c] : 0.f) + static_cast<float>(tb);
}

int rows_grid(int64_t rows) { return static_cast<int>(std::min<int64_t>(std::max<int64_t>((rows + 7) / 8, 1), 65535)); }

}  // namespace

Status embedding_backward(ThreadPool& pool, float* dweight, const int32_t* index, const float* dout, int64_t rows, int64_t dim,
                          int64_t num_embeddings, bool accumulate) {
  Status s = map("embedding_backward", rows, [=] __device__(int64_t r) {
    if (index[r] < 0 || index[r] >= num_embeddings) record_failure(kEmbeddingIndex, index[r], r, num_embeddings, 0);
  });
  if (!s.ok()) return s;
  if (!accumulate && !(s = fill(pool, dweight, num_embeddings * dim, 0.f)).ok()) return s;
  if (rows <= 0 || dim <= 0) return Status::Ok();
  const int64_t blocks = (dim + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return Status::Invalid("embedding_backward: dimension too large");
  embedding_backward_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, g_stream>>>(dweight, index, dout, rows, dim);
  return launched("embedding_backward");
}

Status layernorm_forward(ThreadPool&, float* out, float* save_mean, float* save_invstd, const float* inp, const float* weight, const float* bias,
                         int64_t rows, int64_t dim, float eps) {
  if (rows <= 0 || dim <= 0) return Status::Ok();
  layernorm_forward_kernel<<<rows_grid(rows), kThreads, 0, g_stream>>>(out, save_mean, save_invstd, inp, weight, bias, rows, dim, eps);
  return launched("layernorm_forward");
}

Status layernorm_backward(ThreadPool&, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                          const float* save_mean, const float* save_invstd, int64_t rows, int64_t dim, bool accumulate) {
  if (dim <= 0) return Status::Ok();
  if (dinp && rows > 0) {
    layernorm_dinp_kernel<<<rows_grid(rows), kThreads, 0, g_stream>>>(dinp, dout, inp, weight, save_mean, save_invstd, rows, dim);
    Status s = launched("layernorm_backward");
    if (!s.ok()) return s;
  }
  if (!dweight && !dbias) return Status::Ok();
  const int64_t blocks = (dim + 31) / 32;
  if (blocks > INT32_MAX) return Status::Invalid("layernorm_backward: dimension too large");
  layernorm_params_kernel<<<static_cast<unsigned>(blocks), dim3(32, 8), 0, g_stream>>>(dweight, dbias, dout, inp, save_mean, save_invstd, rows,
                                                                                      dim, accumulate);
  return launched("layernorm_backward");
}

}  // namespace rg::cuda
