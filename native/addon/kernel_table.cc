#include "kernel_table.h"

#include <array>
#include <cmath>
#include <type_traits>
#include <utility>

// One table, two addons: the CPU addon binds it to native/cpu/, the CUDA addon (built with RETROGRAD_CUDA)
// to native/cuda/, whose kernels have the same names and arguments.
#ifdef RETROGRAD_CUDA
#include "../cuda/kernels.h"
namespace K = rg::cuda;
#else
#include "../cpu/kernels.h"
namespace K = rg::cpu;
#endif

namespace rg::addon {

const char* arg_kind_name(Arg a) {
  switch (a) {
    case Arg::F32: return "f32";
    case Arg::F32Opt: return "f32?";
    case Arg::I32: return "i32";
    case Arg::I32Opt: return "i32?";
    case Arg::Any32: return "any32";
    case Arg::Size: return "size";
    case Arg::Int: return "int";
    case Arg::Float: return "float";
    case Arg::Bool: return "bool";
    case Arg::Act: return "act";
    case Arg::Dims: return "dims";
  }
  return "?";
}

static_assert(kMaxDims == K::kMaxDims, "the addon's kMaxDims is the kernels'");

namespace {

// ---- from a prototype to a table entry ----

// The kind of a kernel parameter's type.
template <typename T> struct KindOf;
template <> struct KindOf<float*> { static constexpr Arg kind = Arg::F32; };
template <> struct KindOf<const float*> { static constexpr Arg kind = Arg::F32; };
template <> struct KindOf<int32_t*> { static constexpr Arg kind = Arg::I32; };
template <> struct KindOf<const int32_t*> { static constexpr Arg kind = Arg::I32; };
template <> struct KindOf<void*> { static constexpr Arg kind = Arg::Any32; };
template <> struct KindOf<const void*> { static constexpr Arg kind = Arg::Any32; };
template <> struct KindOf<int64_t> { static constexpr Arg kind = Arg::Size; };
template <> struct KindOf<int> { static constexpr Arg kind = Arg::Size; };
template <> struct KindOf<unsigned> { static constexpr Arg kind = Arg::Size; };
template <> struct KindOf<float> { static constexpr Arg kind = Arg::Float; };
template <> struct KindOf<bool> { static constexpr Arg kind = Arg::Bool; };
template <> struct KindOf<K::Activation> { static constexpr Arg kind = Arg::Act; };
template <> struct KindOf<const int64_t*> { static constexpr Arg kind = Arg::Dims; };

constexpr bool is_buffer(Arg a) { return a == Arg::F32 || a == Arg::I32 || a == Arg::Any32; }

// Where each parameter's value sits in a queued command: its index among the buffers, or among the scalars (a Dims
// parameter takes kMaxDims scalars).
template <typename... P>
struct Layout {
  static constexpr size_t n = sizeof...(P);
  static constexpr Arg kinds[n] = {KindOf<P>::kind...};
  static constexpr std::array<int, n> slot = [] {
    std::array<int, n> at{};
    int buffers = 0, scalars = 0;
    for (size_t i = 0; i < n; i++) {
      if (is_buffer(kinds[i])) {
        at[i] = buffers++;
      } else {
        at[i] = scalars;
        scalars += kinds[i] == Arg::Dims ? K::kMaxDims : 1;
      }
    }
    return at;
  }();
  static constexpr int buffers = [] {
    int b = 0;
    for (size_t i = 0; i < n; i++) b += is_buffer(kinds[i]);
    return b;
  }();
};

// A Dims argument: the sizes copied out of the command's scalars, passed as a pointer for the call's duration.
struct DimsArg {
  int64_t v[K::kMaxDims];
  operator const int64_t*() const { return v; }
};

// Parameter value of type T from a command, at its slot.
template <typename T>
auto value(const Command& c, int at) {
  if constexpr (std::is_same_v<T, float*> || std::is_same_v<T, const float*>) return c.f32(at);
  else if constexpr (std::is_same_v<T, int32_t*> || std::is_same_v<T, const int32_t*>) return c.i32(at);
  else if constexpr (std::is_same_v<T, void*> || std::is_same_v<T, const void*>) return c.raw(at);
  else if constexpr (std::is_same_v<T, bool>) return c.s[at] != 0;
  else if constexpr (std::is_same_v<T, const int64_t*>) {
    DimsArg d;
    for (int k = 0; k < K::kMaxDims; k++) d.v[k] = static_cast<int64_t>(c.s[at + k]);
    return d;
  } else if constexpr (std::is_same_v<T, K::Activation>) return static_cast<K::Activation>(static_cast<int>(c.s[at]));
  else return static_cast<T>(c.s[at]);
}

// Runs a kernel: one that returns a Status reports it, one that returns nothing cannot fail.
template <typename F>
Status ok(F&& f) {
  if constexpr (std::is_same_v<decltype(f()), Status>) {
    return f();
  } else {
    f();
    return Status::Ok();
  }
}

template <auto F> struct Bind;
template <typename R, typename... P, R (*F)(ThreadPool&, P...)>
struct Bind<F> {
  using L = Layout<P...>;
  static_assert(L::buffers <= Command::kMaxBuffers, "more buffers than a command holds");

  static Status run(ThreadPool& pool, const Command& c) { return call(pool, c, std::index_sequence_for<P...>{}); }

  template <size_t... I>
  static Status call(ThreadPool& pool, const Command& c, std::index_sequence<I...>) {
    return ok([&] { return F(pool, value<P>(c, L::slot[I])...); });
  }
};

using Need = Sizes (*)(const double* s);

// The table entry of kernel F, named `name`, its parameters named `names` (one per parameter after the pool, as in
// the prototype; '?' after a buffer's name: it may be null; ':int' after an integer's: it may be negative).
template <auto F, size_t N>
KernelDef bind(const char* name, const char* const (&names)[N], Need need) {
  using B = Bind<F>;
  static_assert(N == B::L::n, "one name per kernel parameter");
  KernelDef k{name, {}, {}, need, &B::run};
  for (size_t i = 0; i < N; i++) {
    std::string label = names[i];
    Arg kind = B::L::kinds[i];
    if (!label.empty() && label.back() == '?') {
      label.pop_back();
      kind = kind == Arg::I32 ? Arg::I32Opt : Arg::F32Opt;
    } else if (label.size() > 4 && label.compare(label.size() - 4, 4, ":int") == 0) {
      label.resize(label.size() - 4);
      kind = Arg::Int;
    }
    k.args.push_back(kind);
    k.names.push_back(label);
  }
  return k;
}

// A kernel of the list, or one of the adapters below.
#define KERNEL(fn, ...) bind<&K::fn>(#fn, __VA_ARGS__)
#define ADAPTED(fn, ...) bind<&fn>(#fn, __VA_ARGS__)
#define NEED [](const double* s) -> Sizes

// Elementwise kernels over N = s[0] values, up to four buffers of N each.
#define ELEMENTWISE_NEED NEED { return {s[0], s[0], s[0], s[0]}; }


// ---- adapters: kernels whose contract differs from the native function's ----

// matmul(out, a, b, M, N, K, transA, transB, alpha, beta): the GEMM in the contract's argument order.
Status matmul(ThreadPool& pool, float* out, const float* a, const float* b, int64_t M, int64_t N, int64_t Kd, bool transA, bool transB,
              float alpha, float beta) {
  return ok([&] { return K::gemm(pool, transA, transB, M, N, Kd, alpha, a, b, beta, out); });
}

// elementwise_flat(out, a, b?, c?, op, alpha, beta, N): elementwise over N contiguous elements, nothing broadcast.
Status elementwise_flat(ThreadPool& pool, float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta,
                        int64_t N) {
  const int64_t dims[K::kMaxDims] = {N, 1, 1, 1, 1, 1};
  return K::elementwise(pool, out, a, b, c, op, alpha, beta, 1, dims, 0, 0, 0);
}

// The recurrent kernels: a known mode, the saved steps present for LSTM and GRU, and the cell states only for LSTM.
Status check_rnn(const char* name, int64_t mode, const float* ws) {
  if (mode < 0 || mode > 3) return Status::Invalid(std::string(name) + ": mode " + std::to_string(mode) + " is not one of 0 (tanh), 1 (relu), 2 (LSTM), 3 (GRU)");
  if (mode >= 2 && !ws) return Status::Invalid(std::string(name) + ": the LSTM and GRU need the ws buffer of saved steps");
  return Status::Ok();
}
Status rnn_forward(ThreadPool& pool, float* out, float* hN, float* cN, float* ws, const float* xproj, const float* w_hh, const float* b_hh,
                   const float* h0, const float* c0, int64_t T, int64_t B, int64_t H, int64_t mode) {
  if (Status s = check_rnn("rnn_forward", mode, ws); !s.ok()) return s;
  const bool lstm = mode == 2;
  return ok([&] { return K::rnn_forward(pool, out, hN, lstm ? cN : nullptr, ws, xproj, w_hh, b_hh, h0, lstm ? c0 : nullptr, T, B, H, mode); });
}
Status rnn_backward(ThreadPool& pool, float* dxproj, float* dw_hh, float* db_hh, float* dh0, float* dc0, float* scratch, const float* dout,
                    const float* dhN, const float* dcN, const float* ws, const float* out, const float* w_hh, const float* h0, const float* c0,
                    int64_t T, int64_t B, int64_t H, int64_t mode, bool accumulate) {
  if (Status s = check_rnn("rnn_backward", mode, ws); !s.ok()) return s;
  const bool lstm = mode == 2;
  return ok([&] {
    return K::rnn_backward(pool, dxproj, dw_hh, db_hh, dh0, lstm ? dc0 : nullptr, scratch, dout, dhN, lstm ? dcN : nullptr, ws, out, w_hh, h0,
                           lstm ? c0 : nullptr, T, B, H, mode, accumulate);
  });
}

// ---- sizes ----

// OH·OW of a window geometry given as scalars B, C, H, W, KH, KW, SH, SW, PH, PW (then DH, DW when `dilated`),
// or NaN when it has no output (a zero stride, or a kernel larger than the padded input): the size check fails
// on NaN, so such a call is refused before it is queued.
double out_hw(const double* s, bool dilated);
// The same for a convolution's scalars B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW.
double conv_hw(const double* s) {
  const double g[12] = {s[0], s[1], s[2], s[3], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12]};
  return out_hw(g, true);
}
// The recurrent kernels' gates G and saved floats per step S (in units of B·H) for a mode; an unknown mode has none
// (its call is refused by check_rnn).
double rnn_gates(double mode) { return mode == 2 ? 4 : mode == 3 ? 3 : 1; }
double rnn_ws(double mode) { return mode == 2 ? 5 : mode == 3 ? 4 : 0; }
// strided_copy / strided_scatter: {contiguous elements, strided extent} for scalars ndim, offset, d0…d5, s0…s5; NaN
// for more than kMaxDims dimensions.
Sizes strided_need(const double* s) {
  const int ndim = static_cast<int>(s[0]);
  if (ndim > K::kMaxDims) return {NAN, NAN};
  double n = 1, extent = s[1] + 1;
  for (int k = 0; k < ndim; k++) {
    n *= s[2 + k];
    extent += (s[2 + k] - 1) * s[8 + k];
  }
  return {n, n == 0 ? 0 : extent};
}
double out_hw(const double* s, bool dilated) {
  const double H = s[2], W = s[3], KH = s[4], KW = s[5], SH = s[6], SW = s[7], PH = s[8], PW = s[9];
  const double DH = dilated ? s[10] : 1, DW = dilated ? s[11] : 1;
  if (SH < 1 || SW < 1 || KH < 1 || KW < 1 || DH < 1 || DW < 1) return NAN;
  const double eh = H + 2 * PH - DH * (KH - 1) - 1, ew = W + 2 * PW - DW * (KW - 1) - 1;
  if (eh < 0 || ew < 0) return NAN;
  return (std::floor(eh / SH) + 1) * (std::floor(ew / SW) + 1);
}

const std::vector<KernelDef> kTable = {
    // matmul(out[M,N], a, b, M, N, K, transA, transB, alpha, beta): out = alpha·op(a)·op(b) + beta·out
    ADAPTED(matmul, {"out", "a", "b", "M", "N", "K", "transA", "transB", "alpha", "beta"},
           NEED { return {s[0] * s[1], s[0] * s[2], s[2] * s[1]}; }),
    // linear_forward(out[B,OC], inp[B,C], weight[OC,C], bias[OC]?, B, C, OC, act, slope): act in the epilogue
    KERNEL(linear_forward, {"out", "inp", "weight", "bias?", "B", "C", "OC", "act", "slope"},
           NEED { return {s[0] * s[2], s[0] * s[1], s[2] * s[1], s[2]}; }),
    // linear_backward(dinp[B,C]?, dweight[OC,C]?, dbias[OC]?, dout[B,OC], inp[B,C], weight[OC,C], B, C, OC, accumulate)
    KERNEL(linear_backward, {"dinp?", "dweight?", "dbias?", "dout", "inp", "weight", "B", "C", "OC", "accumulate"},
           NEED { return {s[0] * s[1], s[2] * s[1], s[2], s[0] * s[2], s[0] * s[1], s[2] * s[1]}; }),
    // act_bias_backward(dz[B,OC]?, dbias[OC]?, dout[B,OC], out[B,OC], B, OC, act, slope, accumulate)
    KERNEL(act_bias_backward, {"dz?", "dbias?", "dout", "out", "B", "OC", "act", "slope", "accumulate"},
           NEED { return {s[0] * s[1], s[1], s[0] * s[1], s[0] * s[1]}; }),
    KERNEL(relu_forward, {"out", "inp", "N"},
           ELEMENTWISE_NEED),
    KERNEL(relu_backward, {"dinp", "dout", "inp", "N"},
           ELEMENTWISE_NEED),
    KERNEL(leaky_relu_forward, {"out", "inp", "N", "slope"},
           ELEMENTWISE_NEED),
    KERNEL(leaky_relu_backward, {"dinp", "dout", "inp", "N", "slope"},
           ELEMENTWISE_NEED),
    KERNEL(sigmoid_forward, {"out", "inp", "N"},
           ELEMENTWISE_NEED),
    KERNEL(sigmoid_backward, {"dinp", "dout", "out", "N"},
           ELEMENTWISE_NEED),
    KERNEL(tanh_forward, {"out", "inp", "N"},
           ELEMENTWISE_NEED),
    KERNEL(tanh_backward, {"dinp", "dout", "out", "N"},
           ELEMENTWISE_NEED),
    KERNEL(gelu_forward, {"out", "inp", "N"},
           ELEMENTWISE_NEED),
    KERNEL(gelu_backward, {"dinp", "dout", "inp", "N"},
           ELEMENTWISE_NEED),
    // softmax_forward(out[B,C], inp[B,C], B, C); softmax_backward(dinp, dout, out, B, C)
    KERNEL(softmax_forward, {"out", "inp", "B", "C"},
           NEED { return {s[0] * s[1], s[0] * s[1]}; }),
    KERNEL(softmax_backward, {"dinp", "dout", "out", "B", "C"},
           NEED { return {s[0] * s[1], s[0] * s[1], s[0] * s[1]}; }),
    // mse_loss(loss[1], dpred[N], pred[N], target[N], N)
    KERNEL(mse_loss, {"loss", "dpred", "pred", "target", "N"},
           NEED { return {1, s[0], s[0], s[0]}; }),
    // cross_entropy_loss(loss[1], dlogits[B,C,D], logits[B,C,D], target[B,D] int32, B, C, D, ignoreIndex)
    KERNEL(cross_entropy_loss, {"loss", "dlogits", "logits", "target", "B", "C", "D", "ignore_index:int"},
           NEED { return {1, s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[0] * s[2]}; }),
    KERNEL(bce_with_logits_loss, {"loss", "dpred", "logits", "target", "N"},
           NEED { return {1, s[0], s[0], s[0]}; }),
    KERNEL(l1_loss, {"loss", "dpred", "pred", "target", "N"},
           NEED { return {1, s[0], s[0], s[0]}; }),
    // huber_loss(loss[1], dpred[N], pred[N], target[N], N, delta)
    KERNEL(huber_loss, {"loss", "dpred", "pred", "target", "N", "delta"},
           NEED { return {1, s[0], s[0], s[0]}; }),
    KERNEL(bce_loss, {"loss", "dpred", "pred", "target", "N"},
           NEED { return {1, s[0], s[0], s[0]}; }),
    // sgd_step(param[N], momentumBuf[N]?, grad[N], N, lr, momentum, dampening, weightDecay, nesterov,
    //          maximize, firstStep)
    KERNEL(sgd_step, {"param", "momentum_buf?", "grad", "N", "lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "first_step"},
           NEED { return {s[0], s[2] != 0 ? s[0] : 0, s[0]}; }),
    // adam_step(param, expAvg, expAvgSq, maxExpAvgSq?, grad, N, lr, beta1, beta2, eps, weightDecay, step,
    //           amsgrad, decoupled, maximize)
    KERNEL(adam_step, {"param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq?", "grad", "N", "lr", "beta1", "beta2", "eps", "weight_decay", "step", "amsgrad", "decoupled", "maximize"},
           NEED { return {s[0], s[0], s[0], s[7] != 0 ? s[0] : 0, s[0]}; }),
    // rmsprop_step(param, squareAvg, gradAvg?, momentumBuf?, grad, N, lr, alpha, eps, weightDecay, momentum,
    //              centered, maximize)
    KERNEL(rmsprop_step, {"param", "square_avg", "grad_avg?", "momentum_buf?", "grad", "N", "lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"},
           NEED { return {s[0], s[0], s[6] != 0 ? s[0] : 0, s[5] > 0 ? s[0] : 0, s[0]}; }),
    // adagrad_step(param, stateSum, grad, N, clr, eps, weightDecay, maximize)
    KERNEL(adagrad_step, {"param", "state_sum", "grad", "N", "clr", "eps", "weight_decay", "maximize"},
           NEED { return {s[0], s[0], s[0]}; }),
    // adamax_step(param, expAvg, expInf, grad, N, lr, beta1, beta2, eps, weightDecay, step, maximize)
    KERNEL(adamax_step, {"param", "exp_avg", "exp_inf", "grad", "N", "lr", "beta1", "beta2", "eps", "weight_decay", "step", "maximize"},
           NEED { return {s[0], s[0], s[0], s[0]}; }),
    // adadelta_step(param, squareAvg, accDelta, grad, N, lr, rho, eps, weightDecay, maximize)
    KERNEL(adadelta_step, {"param", "square_avg", "acc_delta", "grad", "N", "lr", "rho", "eps", "weight_decay", "maximize"},
           NEED { return {s[0], s[0], s[0], s[0]}; }),
    // nadam_radam_step(param, expAvg, expAvgSq, grad, N, beta1, beta2, eps, weightDecay, bc2, cGrad, cAvg, radam, rectified)
    KERNEL(nadam_radam_step, {"param", "exp_avg", "exp_avg_sq", "grad", "N", "beta1", "beta2", "eps", "weight_decay", "bc2", "c_grad", "c_avg", "radam", "rectified"},
           NEED { return {s[0], s[0], s[0], s[0]}; }),
    // fill(out[N], N, value); copy(out[N], src[N], N); axpy(out[N], src[N], N, alpha): out += alpha·src
    KERNEL(fill, {"out", "N", "value"},
           NEED { return {s[0]}; }),
    KERNEL(copy, {"out", "src", "N"},
           NEED { return {s[0], s[0]}; }),
    KERNEL(axpy, {"out", "src", "N", "alpha"},
           NEED { return {s[0], s[0]}; }),
    // gather_rows(out[rows,cols], src[srcRows,cols], index[indexOffset+rows] int32, rows, cols, srcRows, indexOffset)
    KERNEL(gather_rows, {"out", "src", "index", "rows", "cols", "src_rows", "index_offset"},
           NEED { return {s[0] * s[1], s[2] * s[1], s[3] + s[0]}; }),
    // norm_accumulate(acc[1], x[N], N, infNorm); clip_by_norm(x[N], acc[1], N, maxNorm, infNorm); clamp(x[N], N, lo, hi)
    KERNEL(norm_accumulate, {"acc", "x", "N", "inf_norm"},
           NEED { return {1, s[0]}; }),
    KERNEL(clip_by_norm, {"x", "acc", "N", "max_norm", "inf_norm"},
           NEED { return {s[0], 1}; }),
    KERNEL(clamp, {"x", "N", "lo", "hi"},
           NEED { return {s[0]}; }),
    // penalty(acc[1], grad[N], w[N], N, l1, l2)
    KERNEL(penalty, {"acc", "grad", "w", "N", "l1", "l2"},
           NEED { return {1, s[0], s[0]}; }),
    // accuracy_count(count[1], logits[B,C], target[B] int32, B, C): count += correct
    KERNEL(accuracy_count, {"count", "logits", "target", "B", "C"},
           NEED { return {1, s[0] * s[1], s[0]}; }),
    // check_finite(first[1] int32, x[N], N, tag): first NaN/infinity or -1; fails (NON_FINITE) when tag >= 0
    KERNEL(check_finite, {"first", "x", "N", "tag:int"},
           NEED { return {1, s[0]}; }),
    // dropout_forward(out[N], mask[N], inp[N], N, p, seed); dropout_backward(dinp, dout, mask, N)
    KERNEL(dropout_forward, {"out", "mask", "inp", "N", "p", "seed"},
           ELEMENTWISE_NEED),
    KERNEL(dropout_backward, {"dinp", "dout", "mask", "N"},
           ELEMENTWISE_NEED),
    // Convolution, pooling, batch normalisation (NCHW). Geometry arguments: B, C, H, W, KH, KW, SH, SW, PH, PW
    // (and DH, DW for im2col / col2im); OH, OW follow from them and are checked positive here.
    // im2col(col[C·KH·KW, B·OH·OW], inp[B,C,H,W], ...); col2im(dinp[B,C,H,W], dcol[C·KH·KW, B·OH·OW], ...)
    KERNEL(im2col, {"col", "inp", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW"},
           NEED { return {s[1] * s[4] * s[5] * s[0] * out_hw(s, true), s[0] * s[1] * s[2] * s[3]}; }),
    KERNEL(col2im, {"dinp", "dcol", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW"},
           NEED { return {s[0] * s[1] * s[2] * s[3], s[1] * s[4] * s[5] * s[0] * out_hw(s, true)}; }),
    // transpose01(out[Bd,A,R], inp[A,Bd,R], bias[A]?, A, Bd, R); channel_sum(out[C], x[B,C,R], B, C, R, accumulate)
    KERNEL(transpose01, {"out", "inp", "bias?", "A", "Bd", "R"},
           NEED { return {s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[0]}; }),
    KERNEL(channel_sum, {"out", "x", "B", "C", "R", "accumulate"},
           NEED { return {s[1], s[0] * s[1] * s[2]}; }),
    // maxpool2d_forward(out[B,C,OH,OW], argmax[B,C,OH,OW] int32, inp[B,C,H,W], B, C, H, W, KH, KW, SH, SW, PH, PW)
    KERNEL(maxpool2d_forward, {"out", "argmax", "inp", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW"},
           NEED { return {s[0] * s[1] * out_hw(s, false), s[0] * s[1] * out_hw(s, false), s[0] * s[1] * s[2] * s[3]}; }),
    // maxpool2d_backward(dinp[B,C,H,W], dout[B,C,OH,OW], argmax int32, B, C, H, W, KH, KW, SH, SW, PH, PW)
    KERNEL(maxpool2d_backward, {"dinp", "dout", "argmax", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW"},
           NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[1] * out_hw(s, false), s[0] * s[1] * out_hw(s, false)}; }),
    // avgpool2d_forward(out, inp, B, C, H, W, KH, KW, SH, SW, PH, PW, countIncludePad); backward(dinp, dout, ...)
    KERNEL(avgpool2d_forward, {"out", "inp", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "count_include_pad"},
           NEED { return {s[0] * s[1] * out_hw(s, false), s[0] * s[1] * s[2] * s[3]}; }),
    KERNEL(avgpool2d_backward, {"dinp", "dout", "B", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "count_include_pad"},
           NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[1] * out_hw(s, false)}; }),
    // batchnorm_forward(out[B,C,R], saveMean[C], saveInvstd[C], runMean[C], runVar[C], inp[B,C,R], weight[C]?, bias[C]?,
    //                   B, C, R, momentum, eps, training)
    KERNEL(batchnorm_forward, {"out", "save_mean", "save_invstd", "run_mean", "run_var", "inp", "weight?", "bias?", "B", "C", "R", "momentum", "eps", "training"},
           NEED { return {s[0] * s[1] * s[2], s[1], s[1], s[1], s[1], s[0] * s[1] * s[2], s[1], s[1]}; }),
    // batchnorm_backward(dinp?, dweight[C]?, dbias[C]?, dout, inp, weight?, saveMean, saveInvstd, B, C, R, training, accumulate)
    KERNEL(batchnorm_backward, {"dinp?", "dweight?", "dbias?", "dout", "inp", "weight?", "save_mean", "save_invstd", "B", "C", "R", "training", "accumulate"},
           NEED { return {s[0] * s[1] * s[2], s[1], s[1], s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[1], s[1], s[1]}; }),
    // conv2d_forward(out[B,OC,OH,OW], inp[B,C,H,W], weight[OC,C,KH,KW], bias[OC]?, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW)
    KERNEL(conv2d_forward, {"out", "inp", "weight", "bias?", "B", "C", "H", "W", "OC", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW"},
           NEED { return {s[0] * s[4] * conv_hw(s), s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6], s[4]}; }),
    // conv2d_backward(dinp?, dweight?, dbias?, dout, inp, weight, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, accumulate)
    KERNEL(conv2d_backward, {"dinp?", "dweight?", "dbias?", "dout", "inp", "weight", "B", "C", "H", "W", "OC", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "accumulate"},
           NEED { return {s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6], s[4], s[0] * s[4] * conv_hw(s), s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6]}; }),
    // embedding_backward(dweight[num,dim], index[rows] int32, dout[rows,dim], rows, dim, numEmbeddings, accumulate)
    KERNEL(embedding_backward, {"dweight", "index", "dout", "rows", "dim", "num_embeddings", "accumulate"},
           NEED { return {s[2] * s[1], s[0], s[0] * s[1]}; }),
    // layernorm_forward(out[rows,dim], saveMean[rows], saveInvstd[rows], inp[rows,dim], weight[dim]?, bias[dim]?, rows, dim, eps)
    KERNEL(layernorm_forward, {"out", "save_mean", "save_invstd", "inp", "weight?", "bias?", "rows", "dim", "eps"},
           NEED { return {s[0] * s[1], s[0], s[0], s[0] * s[1], s[1], s[1]}; }),
    // layernorm_backward(dinp?, dweight[dim]?, dbias[dim]?, dout, inp, weight?, saveMean, saveInvstd, rows, dim, accumulate)
    KERNEL(layernorm_backward, {"dinp?", "dweight?", "dbias?", "dout", "inp", "weight?", "save_mean", "save_invstd", "rows", "dim", "accumulate"},
           NEED { return {s[0] * s[1], s[1], s[1], s[0] * s[1], s[0] * s[1], s[1], s[0], s[0]}; }),
    // copy_range(out, src, N, outOffset, srcOffset)
    KERNEL(copy_range, {"out", "src", "N", "out_offset", "src_offset"},
           NEED { return {s[1] + s[0], s[2] + s[0]}; }),
    // rnn_forward(out[T,B,H], hN[B,H], cN[B,H]?, ws[T·B·S·H]?, xproj[T,B,G·H], w_hh[G·H,H], b_hh[G·H]?, h0[B,H]?, c0[B,H]?, T, B, H, mode)
    ADAPTED(rnn_forward, {"out", "hN", "cN?", "ws?", "xproj", "w_hh", "b_hh?", "h0?", "c0?", "T", "B", "H", "mode"},
           NEED {
       const double T = s[0], B = s[1], H = s[2], G = rnn_gates(s[3]), S = rnn_ws(s[3]);
       return {T * B * H, B * H, B * H, T * B * S * H, T * B * G * H, G * H * H, G * H, B * H, B * H};
     }),
    // rnn_backward(dxproj, dw_hh?, db_hh?, dh0?, dc0?, scratch, dout, dhN?, dcN?, ws?, out, w_hh, h0?, c0?, T, B, H, mode, accumulate)
    ADAPTED(rnn_backward, {"dxproj", "dw_hh?", "db_hh?", "dh0?", "dc0?", "scratch", "dout", "dhN?", "dcN?", "ws?", "out", "w_hh", "h0?", "c0?", "T", "B", "H", "mode", "accumulate"},
           NEED {
       const double T = s[0], B = s[1], H = s[2], G = rnn_gates(s[3]), S = rnn_ws(s[3]);
       return {T * B * G * H, G * H * H, G * H, B * H, B * H, 2 * B * H + (s[3] == 3 ? T * B * G * H : 0), T * B * H, B * H, B * H,
               T * B * S * H, T * B * H, G * H * H, B * H, B * H};
     }),
    // attention_forward(out[B,T,H·D], probs[B,H,T,T], qkv[B,T,3·H·D], B, T, H, D, causal)
    KERNEL(attention_forward, {"out", "probs", "qkv", "B", "T", "H", "D", "causal"},
           NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[2] * s[1] * s[1], s[0] * s[1] * 3 * s[2] * s[3]}; }),
    // attention_backward(dqkv[B,T,3·H·D], scratch[B,H,T,T], dout[B,T,H·D], qkv, probs, B, T, H, D, causal)
    KERNEL(attention_backward, {"dqkv", "scratch", "dout", "qkv", "probs", "B", "T", "H", "D", "causal"},
           NEED { return {s[0] * s[1] * 3 * s[2] * s[3], s[0] * s[2] * s[1] * s[1], s[0] * s[1] * s[2] * s[3], s[0] * s[1] * 3 * s[2] * s[3], s[0] * s[2] * s[1] * s[1]}; }),
    // ---- generic tensor operations: shapes arrive as scalars d0…d5 (and strides s0…s5) ----
    // elementwise(out, a, b?, c?, op, alpha, beta, ndim, d0…d5, amask, bmask, cmask)
    KERNEL(elementwise, {"out", "a", "b?", "c?", "op", "alpha", "beta", "ndim", "dims", "amask", "bmask", "cmask"},
           NEED {
       const int ndim = static_cast<int>(s[3]);
       if (ndim > K::kMaxDims) return {NAN};
       auto count = [&](double mask) {
         double n = 1;
         for (int k = 0; k < ndim; k++) n *= (static_cast<int64_t>(mask) >> k & 1) ? 1 : s[4 + k];
         return n;
       };
       return {count(0), count(s[10]), count(s[11]), count(s[12])};
     }),
    ADAPTED(elementwise_flat, {"out", "a", "b?", "c?", "op", "alpha", "beta", "N"},
            NEED { return {s[3], s[3], s[3], s[3]}; }),
    // reduce(out[outer,inner], idx[outer,inner]? int32, a[outer,R,inner], op, outer, R, inner)
    KERNEL(reduce, {"out", "idx?", "a", "op", "outer", "R", "inner"},
           NEED { return {s[1] * s[3], s[1] * s[3], s[1] * s[2] * s[3]}; }),
    // strided_copy(out[d…], a, ndim, offset, d0…d5, s0…s5)
    KERNEL(strided_copy, {"out", "a", "ndim", "offset", "dims", "strides"},
           NEED { return strided_need(s); }),
    // strided_scatter(out, a[d…], ndim, offset, d0…d5, s0…s5, accumulate)
    KERNEL(strided_scatter, {"out", "a", "ndim", "offset", "dims", "strides", "accumulate"},
           NEED { const Sizes n = strided_need(s); return {n[1], n[0]}; }),
    // bmm(out[batch,M,N], a, b, batch, M, N, K, transA, transB, strideA, strideB, alpha, beta)
    KERNEL(bmm, {"out", "a", "b", "batch", "M", "N", "K", "trans_a", "trans_b", "stride_a", "stride_b", "alpha", "beta"},
           NEED {
       const double P = s[0], M = s[1], N = s[2], K = s[3];
       if (P == 0) return {0, 0, 0};
       return {P * M * N, (P - 1) * s[6] + M * K, (P - 1) * s[7] + K * N};
     }),
    // index_select(out[outer,n,inner], a[outer,D,inner], idx[n] int32, outer, D, inner, n)
    KERNEL(index_select, {"out", "a", "idx", "outer", "D", "inner", "n"},
           NEED { return {s[0] * s[3] * s[2], s[0] * s[1] * s[2], s[3]}; }),
    // index_add(out[outer,D,inner], src[outer,n,inner], idx[n] int32, outer, D, inner, n)
    KERNEL(index_add, {"out", "src", "idx", "outer", "D", "inner", "n"},
           NEED { return {s[0] * s[1] * s[2], s[0] * s[3] * s[2], s[3]}; }),
    // gather(out[outer,n,inner], a[outer,D,inner], idx[outer,n,inner] int32, outer, D, n, inner)
    KERNEL(gather, {"out", "a", "idx", "outer", "D", "n", "inner"},
           NEED { return {s[0] * s[2] * s[3], s[0] * s[1] * s[3], s[0] * s[2] * s[3]}; }),
    // scatter_add(out[outer,D,inner], src[outer,n,inner], idx[outer,n,inner] int32, outer, D, n, inner)
    KERNEL(scatter_add, {"out", "src", "idx", "outer", "D", "n", "inner"},
           NEED { return {s[0] * s[1] * s[3], s[0] * s[2] * s[3], s[0] * s[2] * s[3]}; }),
};

}  // namespace

const std::vector<KernelDef>& kernel_table() { return kTable; }

}  // namespace rg::addon
