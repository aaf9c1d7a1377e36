// The matrix-product kernels of the GPU (templates; gemm.cu picks and launches them, bench/cuda/gemm_variants.cu
// times other tilings of them): C = act(alpha · op(A) · op(B) + beta · C + bias[col]).
//
// Tiled kernels: a block computes a BM × BN tile of C, stepping through K in slices of BK that it stages in
// shared memory, A's slice stored k-major (As[k][m]) and B's (Bs[k][n]) so that the inner loop reads both
// as 16-byte vectors. Two stages: the next slice is loaded into registers while the current one is
// multiplied, then stored to the other stage, one barrier per slice.
//   - exact float32 (the default): each thread keeps a TM × TN block of C in registers, FFMA;
//   - TF32 (rg.setMatmulPrecision('tf32')): each warp multiplies 16 × 16 × 8 fragments on the tensor cores
//     (nvcuda::wmma), inputs rounded to TF32, accumulation in float32.
// A and B may each be transposed; loads are 16-byte vectors where the leading dimension allows it and the
// four elements lie inside the matrix, scalar loads (zero outside) elsewhere.
#pragma once
#include <mma.h>

#include "gemm.cuh"

namespace rg::cuda {

namespace {

constexpr int kPad = 4;  // keeps rows 16-byte aligned and spreads the transposing stores over the banks

// One BK × BX slice of an operand, staged as S[k][x]. `kContig`: the source holds (x, k) at src[x·ld + k]
// (k contiguous: A untransposed, B transposed); otherwise (k, x) at src[k·ld + x] (x contiguous).
template <int BK, int BX, int NT, bool kContig>
struct SliceLoader {
  static constexpr int kVecs = BK * BX / 4 / NT;  // 16-byte vectors per thread
  static_assert(kVecs >= 1 && BK * BX % (4 * NT) == 0, "tile does not divide among the threads");
  float4 v[kVecs];

  __device__ void load(const float* __restrict__ src, int ld, int x0, int X, int k0, int K, bool vec_ok) {
#pragma unroll
    for (int j = 0; j < kVecs; j++) {
      const int e = (threadIdx.x + j * NT) * 4;  // first element of this vector within the slice
      int x, k;
      if (kContig) {
        x = e / BK;
        k = e % BK;
      } else {
        k = e / BX;
        x = e % BX;
      }
      const int gx = x0 + x, gk = k0 + k;
      float r[4];
      if (kContig) {
        if (vec_ok && gx < X && gk + 3 < K) {
          float4 q = __ldg(reinterpret_cast<const float4*>(src + static_cast<int64_t>(gx) * ld + gk));
          r[0] = q.x, r[1] = q.y, r[2] = q.z, r[3] = q.w;
        } else {
#pragma unroll
          for (int i = 0; i < 4; i++) r[i] = gx < X && gk + i < K ? __ldg(src + static_cast<int64_t>(gx) * ld + gk + i) : 0.f;
        }
      } else {
        if (vec_ok && gk < K && gx + 3 < X) {
          float4 q = __ldg(reinterpret_cast<const float4*>(src + static_cast<int64_t>(gk) * ld + gx));
          r[0] = q.x, r[1] = q.y, r[2] = q.z, r[3] = q.w;
        } else {
#pragma unroll
          for (int i = 0; i < 4; i++) r[i] = gk < K && gx + i < X ? __ldg(src + static_cast<int64_t>(gk) * ld + gx + i) : 0.f;
        }
      }
      v[j] = make_float4(r[0], r[1], r[2], r[3]);
    }
  }

  // kTf32: rounds to TF32 on the way (once per element, rather than in every warp that reads it).
  template <bool kTf32 = false>
  __device__ void store(float (*S)[BX + kPad]) const {
#pragma unroll
    for (int j = 0; j < kVecs; j++) {
      const int e = (threadIdx.x + j * NT) * 4;
      float4 q = v[j];
      if (kTf32) {
        q.x = nvcuda::wmma::__float_to_tf32(q.x);
        q.y = nvcuda::wmma::__float_to_tf32(q.y);
        q.z = nvcuda::wmma::__float_to_tf32(q.z);
        q.w = nvcuda::wmma::__float_to_tf32(q.w);
      }
      if (kContig) {
        const int x = e / BK, k = e % BK;
        S[k][x] = q.x;
        S[k + 1][x] = q.y;
        S[k + 2][x] = q.z;
        S[k + 3][x] = q.w;
      } else {
        const int k = e / BX, x = e % BX;
        *reinterpret_cast<float4*>(&S[k][x]) = q;
      }
    }
  }
};

// The tile a block computes. The grid is one-dimensional (tiles_m · tiles_n blocks, so neither count meets the
// 65,535 limit of a grid's y dimension) and blocks run in launch order, so consecutive blocks take the tiles of a
// group of 8 tile rows column by column: at any time the running blocks share a few panels of A and B, which stay
// in L2.
__device__ __forceinline__ void block_tile(int M, int BM, int& tm, int& tn) {
  constexpr int kGroup = 8;
  const int tiles_m = (M + BM - 1) / BM;
  const int tiles_n = static_cast<int>(gridDim.x / tiles_m);
  const int id = blockIdx.x;
  const int per_group = kGroup * tiles_n;
  const int first = id / per_group * kGroup;
  const int rows = min(tiles_m - first, kGroup);
  tm = first + id % per_group % rows;
  tn = id % per_group / rows;
}


// The exact float32 kernel. Thread (ty, tx) owns rows ty·4 + i (+ BM/2 when TM = 8) and columns likewise.
template <int BM, int BN, int BK, int TM, int TN, int MINB, bool TA, bool TB>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), MINB)
    sgemm_kernel(int M, int N, int K, const float* __restrict__ A, const float* __restrict__ B, float* C, Epilogue ep) {
  RG_GUARD();
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int TX = BN / TN;
  __shared__ __align__(16) float As[2][BK][BM + kPad];
  __shared__ __align__(16) float Bs[2][BK][BN + kPad];
  int tm, tn;
  block_tile(M, BM, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  // op(A) [M,K]: A[M,K] (k contiguous) or, transposed, A[K,M]. op(B) [K,N]: B[K,N] or, transposed, B[N,K].
  const int lda = ep.lda, ldb = ep.ldb;
  const bool a_vec = lda % 4 == 0, b_vec = ldb % 4 == 0;
  SliceLoader<BK, BM, NT, !TA> la;
  SliceLoader<BK, BN, NT, TB> lb;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = 0.f;

  la.load(A, lda, m0, M, 0, K, a_vec);
  lb.load(B, ldb, n0, N, 0, K, b_vec);
  la.store(As[0]);
  lb.store(Bs[0]);
  __syncthreads();

  const int slices = (K + BK - 1) / BK;
  for (int s = 0; s < slices; s++) {
    const int cur = s & 1;
    if (s + 1 < slices) {
      la.load(A, lda, m0, M, (s + 1) * BK, K, a_vec);
      lb.load(B, ldb, n0, N, (s + 1) * BK, K, b_vec);
    }
#pragma unroll
    for (int k = 0; k < BK; k++) {
      float a[TM], b[TN];
#pragma unroll
      for (int c = 0; c < TM / 4; c++) {
        float4 q = *reinterpret_cast<const float4*>(&As[cur][k][c * (BM / TM) * 4 + ty * 4]);
        a[c * 4] = q.x, a[c * 4 + 1] = q.y, a[c * 4 + 2] = q.z, a[c * 4 + 3] = q.w;
      }
#pragma unroll
      for (int c = 0; c < TN / 4; c++) {
        float4 q = *reinterpret_cast<const float4*>(&Bs[cur][k][c * (BN / TN) * 4 + tx * 4]);
        b[c * 4] = q.x, b[c * 4 + 1] = q.y, b[c * 4 + 2] = q.z, b[c * 4 + 3] = q.w;
      }
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (s + 1 < slices) {
      la.store(As[cur ^ 1]);
      lb.store(Bs[cur ^ 1]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; i++) {
    const int row = m0 + (i / 4) * (BM / TM) * 4 + ty * 4 + i % 4;
    if (row >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const int col = n0 + (j / 4) * (BN / TN) * 4 + tx * 4 + j % 4;
      if (col < N) {
        float* c = C + static_cast<int64_t>(row) * N + col;
        *c = ep.apply(acc[i][j], c, col);
      }
    }
  }
}

// The TF32 kernel: 128 × 128 tiles, 8 warps in a 2 × 4 grid, each warp a 64 × 32 block of 4 × 2 fragments.
// kEarly: inputs rounded to TF32 when staged (else in the fragments); MINB: blocks per multiprocessor asked of
// the register allocator.
template <bool kEarly, int MINB, bool TA, bool TB>
__global__ void __launch_bounds__(256, MINB)
    tf32_gemm_kernel(int M, int N, int K, const float* __restrict__ A, const float* __restrict__ B, float* C, Epilogue ep) {
  RG_GUARD();
  using namespace nvcuda;
  constexpr int BM = 128, BN = 128, BK = 16, NT = 256;
  __shared__ __align__(128) float As[2][BK][BM + kPad];
  __shared__ __align__(128) float Bs[2][BK][BN + kPad];
  int tm, tn;
  block_tile(M, BM, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
  const int lda = ep.lda, ldb = ep.ldb;
  const bool a_vec = lda % 4 == 0, b_vec = ldb % 4 == 0;
  SliceLoader<BK, BM, NT, !TA> la;
  SliceLoader<BK, BN, NT, TB> lb;

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);

  la.load(A, lda, m0, M, 0, K, a_vec);
  lb.load(B, ldb, n0, N, 0, K, b_vec);
  la.template store<kEarly>(As[0]);
  lb.template store<kEarly>(Bs[0]);
  __syncthreads();

  const int slices = (K + BK - 1) / BK;
  for (int s = 0; s < slices; s++) {
    const int cur = s & 1;
    if (s + 1 < slices) {
      la.load(A, lda, m0, M, (s + 1) * BK, K, a_vec);
      lb.load(B, ldb, n0, N, (s + 1) * BK, K, b_vec);
    }
#pragma unroll
    for (int k = 0; k < BK; k += 8) {
      // As[k][m] is op(A) column-major with leading dimension BM + kPad; Bs[k][n] is op(B) row-major.
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        wmma::load_matrix_sync(fa[i], &As[cur][k][wm + i * 16], BM + kPad);
#pragma unroll
        if (!kEarly)
          for (int t = 0; t < fa[i].num_elements; t++) fa[i].x[t] = wmma::__float_to_tf32(fa[i].x[t]);
      }
#pragma unroll
      for (int j = 0; j < 2; j++) {
        wmma::load_matrix_sync(fb[j], &Bs[cur][k][wn + j * 16], BN + kPad);
#pragma unroll
        if (!kEarly)
          for (int t = 0; t < fb[j].num_elements; t++) fb[j].x[t] = wmma::__float_to_tf32(fb[j].x[t]);
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    if (s + 1 < slices) {
      la.template store<kEarly>(As[cur ^ 1]);
      lb.template store<kEarly>(Bs[cur ^ 1]);
    }
    __syncthreads();
  }

  // Each warp writes its fragments through a 16 × 16 staging tile of its own (the slices are done with).
  float* stage = &As[0][0][0] + warp * 16 * 16;
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 2; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int row = m0 + wm + i * 16 + e / 16, col = n0 + wn + j * 16 + e % 16;
        if (row < M && col < N) {
          float* c = C + static_cast<int64_t>(row) * N + col;
          *c = ep.apply(stage[e], c, col);
        }
      }
      __syncwarp();
    }
  }
}

// The pipelined TF32 kernel (sm_80 and newer): 128 × 128 tiles, K in slices of 32 copied global → shared by
// cp.async three slices ahead (no registers in between), 8 warps of 64 × 32, each k-step of 8 sixteen
// mma.sync.m16n8k8 on the tensor cores with operands rounded to TF32 (cvt.rna) as they leave shared memory.
// Each operand is staged in the layout its global memory has (16-byte copies need no transposition); the
// padding makes every fragment read conflict-free in either layout. Needs leading dimensions that are
// multiples of 4 (16-byte aligned rows): then every 16-byte chunk lies wholly inside or outside the matrix,
// and chunks outside are zero-filled by the copy itself.
// Blocks for an M × N output in BM × BN tiles (gemm_launch keeps the product under 2^31).
inline unsigned grid_of(int M, int N, int BM, int BN) {
  return static_cast<unsigned>((static_cast<int64_t>(M) + BM - 1) / BM * ((static_cast<int64_t>(N) + BN - 1) / BN));
}

namespace tc {

constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3, NT = 256;

// Staged shapes: "x-major" [x][BK + 4] when k is contiguous in global memory, else "k-major" [BK][x + 8].
template <int X, bool kContig>
struct Stage {
  static constexpr int kRows = kContig ? X : BK;
  static constexpr int kCols = kContig ? BK + 4 : X + 8;
  static constexpr int kFloats = kRows * kCols;
  __device__ static float at(const float* s, int x, int k) { return kContig ? s[x * kCols + k] : s[k * kCols + x]; }
};

__device__ __forceinline__ void cp_async16(float* dst, const float* src, bool in) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(in ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t u;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(u) : "f"(x));
  return u;
}

// Copies the X × BK slice at (x0, k0) of an operand into a stage: 16-byte chunks, NT threads.
template <int X, bool kContig>
__device__ __forceinline__ void load_slice(float* s, const float* __restrict__ src, int ld, int x0, int xs, int k0, int ks) {
  using S = Stage<X, kContig>;
  constexpr int kChunks = X * BK / 4;
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += NT) {
    int x, k;
    if (kContig) {
      x = c / (BK / 4);
      k = c % (BK / 4) * 4;
    } else {
      k = c / (X / 4);
      x = c % (X / 4) * 4;
    }
    const int gx = x0 + x, gk = k0 + k;
    const bool in = gx < xs && gk < ks;
    const float* g = src + (in ? (kContig ? static_cast<int64_t>(gx) * ld + gk : static_cast<int64_t>(gk) * ld + gx) : 0);
    cp_async16(s + (kContig ? x * S::kCols + k : k * S::kCols + x), g, in);
  }
}

template <bool TA, bool TB, int MINB>
__global__ void __launch_bounds__(NT, MINB)
    tf32_mma_kernel(int M, int N, int K, const float* __restrict__ A, const float* __restrict__ B, float* C, Epilogue ep) {
  RG_GUARD();
  using SA = Stage<BM, !TA>;  // op(A) [M,K]: k contiguous unless A is transposed
  using SB = Stage<BN, TB>;   // op(B) [K,N]: k contiguous when B is transposed
  extern __shared__ __align__(16) float smem[];
  float* sa = smem;
  float* sb = smem + STAGES * SA::kFloats;
  int tm, tn;
  block_tile(M, BM, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  const int lda = ep.lda, ldb = ep.ldb;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
  const int g = lane / 4, t = lane % 4;

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

  const int slices = (K + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < slices) {
      load_slice<BM, !TA>(sa + s * SA::kFloats, A, lda, m0, M, s * BK, K);
      load_slice<BN, TB>(sb + s * SB::kFloats, B, ldb, n0, N, s * BK, K);
    }
    cp_commit();
  }

  for (int s = 0; s < slices; s++) {
    cp_wait<STAGES - 2>();
    __syncthreads();  // slice s has landed for everyone, and everyone is done with slice s - 1
    const int next = s + STAGES - 1;
    if (next < slices) {
      load_slice<BM, !TA>(sa + next % STAGES * SA::kFloats, A, lda, m0, M, next * BK, K);
      load_slice<BN, TB>(sb + next % STAGES * SB::kFloats, B, ldb, n0, N, next * BK, K);
    }
    cp_commit();
    const float* a = sa + s % STAGES * SA::kFloats;
    const float* b = sb + s % STAGES * SB::kFloats;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      uint32_t fa[4][4], fb[4][2];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = wm + i * 16 + g;
        fa[i][0] = to_tf32(SA::at(a, r, kk + t));
        fa[i][1] = to_tf32(SA::at(a, r + 8, kk + t));
        fa[i][2] = to_tf32(SA::at(a, r, kk + t + 4));
        fa[i][3] = to_tf32(SA::at(a, r + 8, kk + t + 4));
      }
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int c = wn + j * 8 + g;
        fb[j][0] = to_tf32(SB::at(b, c, kk + t));
        fb[j][1] = to_tf32(SB::at(b, c, kk + t + 4));
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
          asm volatile(
              "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
              : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]), "+f"(acc[i][j][3])
              : "r"(fa[i][0]), "r"(fa[i][1]), "r"(fa[i][2]), "r"(fa[i][3]), "r"(fb[j][0]), "r"(fb[j][1]));
    }
  }
  cp_wait<0>();

  // Accumulator (i, j, r) is row wm + 16i + g (+8 for r ≥ 2), column wn + 8j + 2t (+1 for odd r).
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int row = m0 + wm + i * 16 + g + (r >= 2 ? 8 : 0);
        const int col = n0 + wn + j * 8 + 2 * t + (r & 1);
        if (row < M && col < N) {
          float* c = C + static_cast<int64_t>(row) * N + col;
          *c = ep.apply(acc[i][j][r], c, col);
        }
      }
}

constexpr size_t smem_bytes(bool ta, bool tb) {
  return STAGES * sizeof(float) *
         ((ta ? Stage<BM, false>::kFloats : Stage<BM, true>::kFloats) + (tb ? Stage<BN, true>::kFloats : Stage<BN, false>::kFloats));
}

// Launches it; false when it does not apply here (rows not 16-byte aligned, or too little shared memory).
template <bool TA, bool TB>
bool launch(int M, int N, int K, const float* A, const float* B, float* C, const Epilogue& ep) {
  const int lda = ep.lda, ldb = ep.ldb;
  if (lda % 4 || ldb % 4) return false;
  constexpr size_t bytes = smem_bytes(TA, TB);
  static bool ready = cudaFuncSetAttribute(tf32_mma_kernel<TA, TB, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)) == cudaSuccess;
  if (!ready) {
    cudaGetLastError();
    return false;
  }
  tf32_mma_kernel<TA, TB, 2><<<grid_of(M, N, BM, BN), NT, bytes, g_stream>>>(M, N, K, A, B, C, ep);
  return true;
}

}  // namespace tc

}  // namespace

}  // namespace rg::cuda
