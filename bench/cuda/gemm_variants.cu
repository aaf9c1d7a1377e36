// Times tilings of the CUDA backend's matrix kernels (native/cuda/gemm_kernels.cuh) one against another, outside the
// addon: the mainline's choice (gemm.cu) next to the alternatives it was chosen over. Each variant is first checked
// against a float64 product on awkward shapes with both transposes, then timed at n³ (median of 20 samples of 5
// products, CUDA events). Built and run by bench/gpu-gemm-variants.mjs:
//   nvcc -O3 -std=c++17 --expt-relaxed-constexpr -arch=native bench/cuda/gemm_variants.cu native/cuda/runtime.cu -o gemm_variants
//   ./gemm_variants [n]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../native/cuda/gemm_kernels.cuh"

// The addon's runtime (native/cuda/runtime.cu, built with this file) sets up the stream and the failure flag the
// kernels read; the one symbol it needs from the other kernel files is named here.
namespace rg::cuda {
const char* index_kernel_name(int) { return "an index kernel"; }
}  // namespace rg::cuda

using namespace rg::cuda;

namespace {

using Launch = std::function<bool(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C, Epilogue ep)>;

struct Variant {
  const char* precision;
  const char* name;
  Launch launch;
};

template <template <bool, bool> class L>
Launch dispatch() {
  return [](bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C, Epilogue ep) {
    ep.lda = ta ? M : K;
    ep.ldb = tb ? K : N;
    if (ta) return tb ? L<true, true>::run(M, N, K, A, B, C, ep) : L<true, false>::run(M, N, K, A, B, C, ep);
    return tb ? L<false, true>::run(M, N, K, A, B, C, ep) : L<false, false>::run(M, N, K, A, B, C, ep);
  };
}

template <int BK, int MINB>
struct Sgemm128 {
  template <bool TA, bool TB>
  struct L {
    static bool run(int M, int N, int K, const float* A, const float* B, float* C, const Epilogue& ep) {
      sgemm_kernel<128, 128, BK, 8, 8, MINB, TA, TB><<<grid_of(M, N, 128, 128), 256>>>(M, N, K, A, B, C, ep);
      return true;
    }
  };
};

template <bool kEarly, int MINB>
struct Wmma {
  template <bool TA, bool TB>
  struct L {
    static bool run(int M, int N, int K, const float* A, const float* B, float* C, const Epilogue& ep) {
      tf32_gemm_kernel<kEarly, MINB, TA, TB><<<grid_of(M, N, 128, 128), 256>>>(M, N, K, A, B, C, ep);
      return true;
    }
  };
};

template <bool TA, bool TB>
struct Mma {
  static bool run(int M, int N, int K, const float* A, const float* B, float* C, const Epilogue& ep) { return tc::launch<TA, TB>(M, N, K, A, B, C, ep); }
};

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) x = ((seed = seed * 1103515245u + 12345u) / 4294967296.0) * 2 - 1;
  return v;
}

float* device_copy(const std::vector<float>& v) {
  float* d = nullptr;
  cudaMalloc(&d, v.size() * sizeof(float));
  cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
  return d;
}

// Relative error (Frobenius) of the worst of the awkward shapes against float64; a shape the kernel refuses (the
// mma.sync pipeline needs 16-byte aligned rows) is left out, and infinity means it refused every one or failed.
double check(const Variant& v) {
  double worst = 0;
  int checked = 0;
  const int shapes[][3] = {{257, 131, 301}, {260, 132, 300}, {300, 260, 516}};
  for (auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        auto A = random_values(static_cast<size_t>(M) * K, 1), B = random_values(static_cast<size_t>(K) * N, 2);
        float *dA = device_copy(A), *dB = device_copy(B), *dC = device_copy(std::vector<float>(static_cast<size_t>(M) * N, NAN));
        const bool ok = v.launch(ta, tb, M, N, K, dA, dB, dC, Epilogue{1.f, 0.f, 0.f, nullptr, 0});
        std::vector<float> C(static_cast<size_t>(M) * N);
        cudaMemcpy(C.data(), dC, C.size() * sizeof(float), cudaMemcpyDeviceToHost);
        cudaFree(dA), cudaFree(dB), cudaFree(dC);
        if (cudaGetLastError() != cudaSuccess) return INFINITY;
        if (!ok) continue;
        checked++;
        double d = 0, r = 0;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            double ref = 0;
            for (int k = 0; k < K; k++) ref += static_cast<double>(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            d += (C[i * N + j] - ref) * (C[i * N + j] - ref), r += ref * ref;
          }
        worst = std::max(worst, std::isnan(d) ? INFINITY : std::sqrt(d / r));
      }
  }
  return checked > 0 ? worst : INFINITY;
}

double tflops(const Variant& v, int n) {
  float *a = device_copy(random_values(static_cast<size_t>(n) * n, 3)), *b = device_copy(random_values(static_cast<size_t>(n) * n, 4)), *c = nullptr;
  cudaMalloc(&c, static_cast<size_t>(n) * n * sizeof(float));
  const Epilogue ep{1.f, 0.f, 0.f, nullptr, 0};
  for (int i = 0; i < 3; i++) v.launch(false, false, n, n, n, a, b, c, ep);
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0), cudaEventCreate(&t1);
  std::vector<float> ms;
  for (int r = 0; r < 20; r++) {
    cudaEventRecord(t0);
    for (int i = 0; i < 5; i++) v.launch(false, false, n, n, n, a, b, c, ep);
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float t = 0;
    cudaEventElapsedTime(&t, t0, t1);
    ms.push_back(t / 5);
  }
  cudaFree(a), cudaFree(b), cudaFree(c);
  std::sort(ms.begin(), ms.end());
  return 2.0 * n * n * n / (ms[10] / 1e3) / 1e12;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 4096;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  if (!start(nullptr).ok()) {
    std::fprintf(stderr, "the CUDA runtime could not start\n");
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, dev);
  const Variant variants[] = {
      {"highest", "128x128 slices of 8, 2 blocks/SM (mainline)", dispatch<Sgemm128<8, 2>::L>()},
      {"highest", "128x128 slices of 16, 1 block/SM", dispatch<Sgemm128<16, 1>::L>()},
      {"tf32", "mma.sync cp.async pipeline (mainline)", dispatch<Mma>()},
      {"tf32", "wmma, early loads, 2 blocks/SM (mainline fallback)", dispatch<Wmma<true, 2>::L>()},
      {"tf32", "wmma, 1 block/SM", dispatch<Wmma<false, 1>::L>()},
  };
  std::printf("== matrix kernel variants at %d^3 on %s\n", n, prop.name);
  std::printf("%-9s %-52s %-10s %s\n", "precision", "variant", "error", "TFLOP/s");
  for (const Variant& v : variants) {
    const double err = check(v);
    const double tf = std::isfinite(err) ? tflops(v, n) : 0;
    std::printf("%-9s %-52s %-10.2e %.2f\n", v.precision, v.name, err, tf);
  }
  return 0;
}
