#include "kernel_table.h"

#include <cmath>
#include <type_traits>

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

namespace {

using A = Arg;

// Accessors for a call's arguments: buffer i as float* (null when absent) or int32*; scalar i as a size,
// float or bool.
float* f(Call& c, int i) { return c.buf[i] ? c.buf[i]->f32() : nullptr; }
int32_t* i32(Call& c, int i) { return c.buf[i]->i32(); }
void* raw(Call& c, int i) { return c.buf[i]->raw(); }
int64_t z(const Call& c, int i) { return static_cast<int64_t>(c.s[i]); }
float x(const Call& c, int i) { return static_cast<float>(c.s[i]); }
bool b(const Call& c, int i) { return c.s[i] != 0; }
K::Activation act(const Call& c, int i) { return static_cast<K::Activation>(static_cast<int>(c.s[i])); }

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

#define RUN [](ThreadPool & pool, Call & c) -> Status
#define NEED [](const double* s) -> std::vector<double>

// Elementwise kernels over N = s[0] values, `nbuf` buffers of N each.
#define ELEMENTWISE_NEED NEED { return {s[0], s[0], s[0], s[0]}; }

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
// The checks a size cannot express: a known mode, and the saved steps (buffer ws_index) present for LSTM and GRU.
Status check_rnn(const char* name, const Call& c, int ws_index) {
  const int64_t mode = z(c, 3);
  if (mode < 0 || mode > 3) return Status::Invalid(std::string(name) + ": mode " + std::to_string(mode) + " is not one of 0 (tanh), 1 (relu), 2 (LSTM), 3 (GRU)");
  if (mode >= 2 && !c.buf[ws_index]) return Status::Invalid(std::string(name) + ": the LSTM and GRU need the ws buffer of saved steps");
  return Status::Ok();
}
// strided_copy / strided_scatter: {contiguous elements, strided extent} for scalars ndim, offset, d0…d5, s0…s5; NaN
// for more than kMaxDims dimensions.
std::vector<double> strided_need(const double* s) {
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
    {"matmul", {A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Bool, A::Bool, A::Float, A::Float},
     NEED { return {s[0] * s[1], s[0] * s[2], s[2] * s[1]}; },
     RUN { return ok([&] { K::gemm(pool, b(c, 3), b(c, 4), z(c, 0), z(c, 1), z(c, 2), x(c, 5), f(c, 1), f(c, 2), x(c, 6), f(c, 0)); }); }},
    // linear_forward(out[B,OC], inp[B,C], weight[OC,C], bias[OC]?, B, C, OC, act, slope): act in the epilogue
    {"linear_forward", {A::F32, A::F32, A::F32, A::F32Opt, A::Size, A::Size, A::Size, A::Act, A::Float},
     NEED { return {s[0] * s[2], s[0] * s[1], s[2] * s[1], s[2]}; },
     RUN { return ok([&] { K::linear_forward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), z(c, 1), z(c, 2), act(c, 3), x(c, 4)); }); }},
    // linear_backward(dinp[B,C]?, dweight[OC,C]?, dbias[OC]?, dout[B,OC], inp[B,C], weight[OC,C], B, C, OC, accumulate)
    {"linear_backward", {A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1], s[2] * s[1], s[2], s[0] * s[2], s[0] * s[1], s[2] * s[1]}; },
     RUN { return ok([&] { K::linear_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), z(c, 0), z(c, 1), z(c, 2), b(c, 3)); }); }},
    // act_bias_backward(dz[B,OC]?, dbias[OC]?, dout[B,OC], out[B,OC], B, OC, act, slope, accumulate)
    {"act_bias_backward", {A::F32Opt, A::F32Opt, A::F32, A::F32, A::Size, A::Size, A::Act, A::Float, A::Bool},
     NEED { return {s[0] * s[1], s[1], s[0] * s[1], s[0] * s[1]}; },
     RUN { return ok([&] { K::act_bias_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), z(c, 1), act(c, 2), x(c, 3), b(c, 4)); }); }},

    {"relu_forward", {A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::relu_forward(pool, f(c, 0), f(c, 1), z(c, 0)); }); }},
    {"relu_backward", {A::F32, A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::relu_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0)); }); }},
    {"leaky_relu_forward", {A::F32, A::F32, A::Size, A::Float}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::leaky_relu_forward(pool, f(c, 0), f(c, 1), z(c, 0), x(c, 1)); }); }},
    {"leaky_relu_backward", {A::F32, A::F32, A::F32, A::Size, A::Float}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::leaky_relu_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), x(c, 1)); }); }},
    {"sigmoid_forward", {A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::sigmoid_forward(pool, f(c, 0), f(c, 1), z(c, 0)); }); }},
    {"sigmoid_backward", {A::F32, A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::sigmoid_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0)); }); }},
    {"tanh_forward", {A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::tanh_forward(pool, f(c, 0), f(c, 1), z(c, 0)); }); }},
    {"tanh_backward", {A::F32, A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::tanh_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0)); }); }},
    {"gelu_forward", {A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::gelu_forward(pool, f(c, 0), f(c, 1), z(c, 0)); }); }},
    {"gelu_backward", {A::F32, A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::gelu_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0)); }); }},
    // softmax_forward(out[B,C], inp[B,C], B, C); softmax_backward(dinp, dout, out, B, C)
    {"softmax_forward", {A::F32, A::F32, A::Size, A::Size}, NEED { return {s[0] * s[1], s[0] * s[1]}; },
     RUN { return ok([&] { K::softmax_forward(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1)); }); }},
    {"softmax_backward", {A::F32, A::F32, A::F32, A::Size, A::Size},
     NEED { return {s[0] * s[1], s[0] * s[1], s[0] * s[1]}; },
     RUN { return ok([&] { K::softmax_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), z(c, 1)); }); }},

    // mse_loss(loss[1], dpred[N], pred[N], target[N], N)
    {"mse_loss", {A::F32, A::F32, A::F32, A::F32, A::Size}, NEED { return {1, s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::mse_loss(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0)); }); }},
    // cross_entropy_loss(loss[1], dlogits[B,C,D], logits[B,C,D], target[B,D] int32, B, C, D, ignoreIndex)
    {"cross_entropy_loss", {A::F32, A::F32, A::F32, A::I32, A::Size, A::Size, A::Size, A::Int},
     NEED { return {1, s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[0] * s[2]}; },
     RUN { return K::cross_entropy_loss(pool, f(c, 0), f(c, 1), f(c, 2), i32(c, 3), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
    {"bce_with_logits_loss", {A::F32, A::F32, A::F32, A::F32, A::Size}, NEED { return {1, s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::bce_with_logits_loss(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0)); }); }},
    {"l1_loss", {A::F32, A::F32, A::F32, A::F32, A::Size}, NEED { return {1, s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::l1_loss(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0)); }); }},
    // huber_loss(loss[1], dpred[N], pred[N], target[N], N, delta)
    {"huber_loss", {A::F32, A::F32, A::F32, A::F32, A::Size, A::Float}, NEED { return {1, s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::huber_loss(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), x(c, 1)); }); }},
    {"bce_loss", {A::F32, A::F32, A::F32, A::F32, A::Size}, NEED { return {1, s[0], s[0], s[0]}; },
     RUN { return K::bce_loss(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0)); }},

    // sgd_step(param[N], momentumBuf[N]?, grad[N], N, lr, momentum, dampening, weightDecay, nesterov,
    //          maximize, firstStep)
    {"sgd_step", {A::F32, A::F32Opt, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Bool, A::Bool, A::Bool},
     NEED { return {s[0], s[2] != 0 ? s[0] : 0, s[0]}; },
     RUN { return ok([&] { K::sgd_step(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), b(c, 5), b(c, 6), b(c, 7)); }); }},
    // adam_step(param, expAvg, expAvgSq, maxExpAvgSq?, grad, N, lr, beta1, beta2, eps, weightDecay, step,
    //           amsgrad, decoupled, maximize)
    {"adam_step", {A::F32, A::F32, A::F32, A::F32Opt, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Float, A::Size, A::Bool, A::Bool, A::Bool},
     NEED { return {s[0], s[0], s[0], s[7] != 0 ? s[0] : 0, s[0]}; },
     RUN { return ok([&] { K::adam_step(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), x(c, 5), z(c, 6), b(c, 7), b(c, 8), b(c, 9)); }); }},

    // rmsprop_step(param, squareAvg, gradAvg?, momentumBuf?, grad, N, lr, alpha, eps, weightDecay, momentum,
    //              centered, maximize)
    {"rmsprop_step", {A::F32, A::F32, A::F32Opt, A::F32Opt, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Float, A::Bool, A::Bool},
     NEED { return {s[0], s[0], s[6] != 0 ? s[0] : 0, s[5] > 0 ? s[0] : 0, s[0]}; },
     RUN { return ok([&] { K::rmsprop_step(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), x(c, 5), b(c, 6), b(c, 7)); }); }},
    // adagrad_step(param, stateSum, grad, N, clr, eps, weightDecay, maximize)
    {"adagrad_step", {A::F32, A::F32, A::F32, A::Size, A::Float, A::Float, A::Float, A::Bool},
     NEED { return {s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::adagrad_step(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), x(c, 1), x(c, 2), x(c, 3), b(c, 4)); }); }},

    // adamax_step(param, expAvg, expInf, grad, N, lr, beta1, beta2, eps, weightDecay, step, maximize)
    {"adamax_step", {A::F32, A::F32, A::F32, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Float, A::Size, A::Bool},
     NEED { return {s[0], s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::adamax_step(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), x(c, 5), z(c, 6), b(c, 7)); }); }},
    // adadelta_step(param, squareAvg, accDelta, grad, N, lr, rho, eps, weightDecay, maximize)
    {"adadelta_step", {A::F32, A::F32, A::F32, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Bool},
     NEED { return {s[0], s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::adadelta_step(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), b(c, 5)); }); }},
    // nadam_radam_step(param, expAvg, expAvgSq, grad, N, beta1, beta2, eps, weightDecay, bc2, cGrad, cAvg, radam, rectified)
    {"nadam_radam_step", {A::F32, A::F32, A::F32, A::F32, A::Size, A::Float, A::Float, A::Float, A::Float, A::Float, A::Float, A::Float, A::Bool, A::Bool},
     NEED { return {s[0], s[0], s[0], s[0]}; },
     RUN { return ok([&] { K::nadam_radam_step(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), x(c, 1), x(c, 2), x(c, 3), x(c, 4), x(c, 5), x(c, 6), x(c, 7), b(c, 8), b(c, 9)); }); }},

    // fill(out[N], N, value); copy(out[N], src[N], N); axpy(out[N], src[N], N, alpha): out += alpha·src
    {"fill", {A::F32, A::Size, A::Float}, NEED { return {s[0]}; },
     RUN { return ok([&] { K::fill(pool, f(c, 0), z(c, 0), x(c, 1)); }); }},
    {"copy", {A::Any32, A::Any32, A::Size}, NEED { return {s[0], s[0]}; },
     RUN { return ok([&] { K::copy(pool, raw(c, 0), raw(c, 1), z(c, 0)); }); }},
    {"axpy", {A::F32, A::F32, A::Size, A::Float}, NEED { return {s[0], s[0]}; },
     RUN { return ok([&] { K::axpy(pool, f(c, 0), f(c, 1), z(c, 0), x(c, 1)); }); }},
    // gather_rows(out[rows,cols], src[srcRows,cols], index[indexOffset+rows] int32, rows, cols, srcRows, indexOffset)
    {"gather_rows", {A::Any32, A::Any32, A::I32, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1], s[2] * s[1], s[3] + s[0]}; },
     RUN { return K::gather_rows(pool, raw(c, 0), raw(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
    // norm_accumulate(acc[1], x[N], N, infNorm); clip_by_norm(x[N], acc[1], N, maxNorm, infNorm); clamp(x[N], N, lo, hi)
    {"norm_accumulate", {A::F32, A::F32, A::Size, A::Bool}, NEED { return {1, s[0]}; },
     RUN { return ok([&] { K::norm_accumulate(pool, f(c, 0), f(c, 1), z(c, 0), b(c, 1)); }); }},
    {"clip_by_norm", {A::F32, A::F32, A::Size, A::Float, A::Bool}, NEED { return {s[0], 1}; },
     RUN { return ok([&] { K::clip_by_norm(pool, f(c, 0), f(c, 1), z(c, 0), x(c, 1), b(c, 2)); }); }},
    {"clamp", {A::F32, A::Size, A::Float, A::Float}, NEED { return {s[0]}; },
     RUN { return ok([&] { K::clamp(pool, f(c, 0), z(c, 0), x(c, 1), x(c, 2)); }); }},
    // penalty(acc[1], grad[N], w[N], N, l1, l2)
    {"penalty", {A::F32, A::F32, A::F32, A::Size, A::Float, A::Float}, NEED { return {1, s[0], s[0]}; },
     RUN { return ok([&] { K::penalty(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), x(c, 1), x(c, 2)); }); }},
    // accuracy_count(count[1], logits[B,C], target[B] int32, B, C): count += correct
    {"accuracy_count", {A::F32, A::F32, A::I32, A::Size, A::Size}, NEED { return {1, s[0] * s[1], s[0]}; },
     RUN { return ok([&] { K::accuracy_count(pool, f(c, 0), f(c, 1), i32(c, 2), z(c, 0), z(c, 1)); }); }},
    // check_finite(first[1] int32, x[N], N, tag): first NaN/infinity or -1; fails (NON_FINITE) when tag >= 0
    {"check_finite", {A::I32, A::F32, A::Size, A::Int}, NEED { return {1, s[0]}; },
     RUN { return K::check_finite(pool, i32(c, 0), f(c, 1), z(c, 0), z(c, 1)); }},

    // dropout_forward(out[N], mask[N], inp[N], N, p, seed); dropout_backward(dinp, dout, mask, N)
    {"dropout_forward", {A::F32, A::F32, A::F32, A::Size, A::Float, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::dropout_forward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), x(c, 1), static_cast<uint32_t>(c.s[2])); }); }},
    {"dropout_backward", {A::F32, A::F32, A::F32, A::Size}, ELEMENTWISE_NEED,
     RUN { return ok([&] { K::dropout_backward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0)); }); }},

    // Convolution, pooling, batch normalisation (NCHW). Geometry arguments: B, C, H, W, KH, KW, SH, SW, PH, PW
    // (and DH, DW for im2col / col2im); OH, OW follow from them and are checked positive here.
    // im2col(col[C·KH·KW, B·OH·OW], inp[B,C,H,W], ...); col2im(dinp[B,C,H,W], dcol[C·KH·KW, B·OH·OW], ...)
    {"im2col", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[1] * s[4] * s[5] * s[0] * out_hw(s, true), s[0] * s[1] * s[2] * s[3]}; },
     RUN { return ok([&] { return K::im2col(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), z(c, 10), z(c, 11)); }); }},
    {"col2im", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * s[2] * s[3], s[1] * s[4] * s[5] * s[0] * out_hw(s, true)}; },
     RUN { return ok([&] { return K::col2im(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), z(c, 10), z(c, 11)); }); }},
    // transpose01(out[Bd,A,R], inp[A,Bd,R], bias[A]?, A, Bd, R); channel_sum(out[C], x[B,C,R], B, C, R, accumulate)
    {"transpose01", {A::F32, A::F32, A::F32Opt, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[0]}; },
     RUN { return ok([&] { return K::transpose01(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), z(c, 1), z(c, 2)); }); }},
    {"channel_sum", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Bool}, NEED { return {s[1], s[0] * s[1] * s[2]}; },
     RUN { return ok([&] { return K::channel_sum(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2), b(c, 3)); }); }},
    // maxpool2d_forward(out[B,C,OH,OW], argmax[B,C,OH,OW] int32, inp[B,C,H,W], B, C, H, W, KH, KW, SH, SW, PH, PW)
    {"maxpool2d_forward", {A::F32, A::I32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * out_hw(s, false), s[0] * s[1] * out_hw(s, false), s[0] * s[1] * s[2] * s[3]}; },
     RUN { return ok([&] { return K::maxpool2d_forward(pool, f(c, 0), i32(c, 1), f(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9)); }); }},
    // maxpool2d_backward(dinp[B,C,H,W], dout[B,C,OH,OW], argmax int32, B, C, H, W, KH, KW, SH, SW, PH, PW)
    {"maxpool2d_backward", {A::F32, A::F32, A::I32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[1] * out_hw(s, false), s[0] * s[1] * out_hw(s, false)}; },
     RUN { return ok([&] { return K::maxpool2d_backward(pool, f(c, 0), f(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9)); }); }},
    // avgpool2d_forward(out, inp, B, C, H, W, KH, KW, SH, SW, PH, PW, countIncludePad); backward(dinp, dout, ...)
    {"avgpool2d_forward", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1] * out_hw(s, false), s[0] * s[1] * s[2] * s[3]}; },
     RUN { return ok([&] { return K::avgpool2d_forward(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), b(c, 10)); }); }},
    {"avgpool2d_backward", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[1] * out_hw(s, false)}; },
     RUN { return ok([&] { return K::avgpool2d_backward(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), b(c, 10)); }); }},
    // batchnorm_forward(out[B,C,R], saveMean[C], saveInvstd[C], runMean[C], runVar[C], inp[B,C,R], weight[C]?, bias[C]?,
    //                   B, C, R, momentum, eps, training)
    {"batchnorm_forward", {A::F32, A::F32, A::F32, A::F32, A::F32, A::F32, A::F32Opt, A::F32Opt, A::Size, A::Size, A::Size, A::Float, A::Float, A::Bool},
     NEED { return {s[0] * s[1] * s[2], s[1], s[1], s[1], s[1], s[0] * s[1] * s[2], s[1], s[1]}; },
     RUN { return ok([&] { return K::batchnorm_forward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), f(c, 6), f(c, 7), z(c, 0), z(c, 1), z(c, 2), x(c, 3), x(c, 4), b(c, 5)); }); }},
    // batchnorm_backward(dinp?, dweight[C]?, dbias[C]?, dout, inp, weight?, saveMean, saveInvstd, B, C, R, training, accumulate)
    {"batchnorm_backward", {A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32Opt, A::F32, A::F32, A::Size, A::Size, A::Size, A::Bool, A::Bool},
     NEED { return {s[0] * s[1] * s[2], s[1], s[1], s[0] * s[1] * s[2], s[0] * s[1] * s[2], s[1], s[1], s[1]}; },
     RUN { return ok([&] { return K::batchnorm_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), f(c, 6), f(c, 7), z(c, 0), z(c, 1), z(c, 2), b(c, 3), b(c, 4)); }); }},
    // conv2d_forward(out[B,OC,OH,OW], inp[B,C,H,W], weight[OC,C,KH,KW], bias[OC]?, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW)
    {"conv2d_forward", {A::F32, A::F32, A::F32, A::F32Opt, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[4] * conv_hw(s), s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6], s[4]}; },
     RUN { return ok([&] { return K::conv2d_forward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), z(c, 10), z(c, 11), z(c, 12)); }); }},
    // conv2d_backward(dinp?, dweight?, dbias?, dout, inp, weight, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, accumulate)
    {"conv2d_backward", {A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6], s[4], s[0] * s[4] * conv_hw(s), s[0] * s[1] * s[2] * s[3], s[4] * s[1] * s[5] * s[6]}; },
     RUN { return ok([&] { return K::conv2d_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), z(c, 0), z(c, 1), z(c, 2), z(c, 3), z(c, 4), z(c, 5), z(c, 6), z(c, 7), z(c, 8), z(c, 9), z(c, 10), z(c, 11), z(c, 12), b(c, 13)); }); }},
    // embedding_backward(dweight[num,dim], index[rows] int32, dout[rows,dim], rows, dim, numEmbeddings, accumulate)
    {"embedding_backward", {A::F32, A::I32, A::F32, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[2] * s[1], s[0], s[0] * s[1]}; },
     RUN { return ok([&] { return K::embedding_backward(pool, f(c, 0), i32(c, 1), f(c, 2), z(c, 0), z(c, 1), z(c, 2), b(c, 3)); }); }},
    // layernorm_forward(out[rows,dim], saveMean[rows], saveInvstd[rows], inp[rows,dim], weight[dim]?, bias[dim]?, rows, dim, eps)
    {"layernorm_forward", {A::F32, A::F32, A::F32, A::F32, A::F32Opt, A::F32Opt, A::Size, A::Size, A::Float},
     NEED { return {s[0] * s[1], s[0], s[0], s[0] * s[1], s[1], s[1]}; },
     RUN { return ok([&] { return K::layernorm_forward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), z(c, 0), z(c, 1), x(c, 2)); }); }},
    // layernorm_backward(dinp?, dweight[dim]?, dbias[dim]?, dout, inp, weight?, saveMean, saveInvstd, rows, dim, accumulate)
    {"layernorm_backward", {A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32Opt, A::F32, A::F32, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1], s[1], s[1], s[0] * s[1], s[0] * s[1], s[1], s[0], s[0]}; },
     RUN { return ok([&] { return K::layernorm_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), f(c, 5), f(c, 6), f(c, 7), z(c, 0), z(c, 1), b(c, 2)); }); }},
    // copy_range(out, src, N, outOffset, srcOffset)
    {"copy_range", {A::F32, A::F32, A::Size, A::Size, A::Size}, NEED { return {s[1] + s[0], s[2] + s[0]}; },
     RUN { return ok([&] { return K::copy_range(pool, f(c, 0), f(c, 1), z(c, 0), z(c, 1), z(c, 2)); }); }},
    // rnn_forward(out[T,B,H], hN[B,H], cN[B,H]?, ws[T·B·S·H]?, xproj[T,B,G·H], w_hh[G·H,H], b_hh[G·H]?, h0[B,H]?, c0[B,H]?, T, B, H, mode)
    {"rnn_forward", {A::F32, A::F32, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32Opt, A::F32Opt, A::F32Opt, A::Size, A::Size, A::Size, A::Size},
     NEED {
       const double T = s[0], B = s[1], H = s[2], G = rnn_gates(s[3]), S = rnn_ws(s[3]);
       return {T * B * H, B * H, B * H, T * B * S * H, T * B * G * H, G * H * H, G * H, B * H, B * H};
     },
     RUN {
       const bool lstm = z(c, 3) == 2;
       if (Status s = check_rnn("rnn_forward", c, 3); !s.ok()) return s;
       return ok([&] { return K::rnn_forward(pool, f(c, 0), f(c, 1), lstm ? f(c, 2) : nullptr, f(c, 3), f(c, 4), f(c, 5), f(c, 6), f(c, 7), lstm ? f(c, 8) : nullptr, z(c, 0), z(c, 1), z(c, 2), z(c, 3)); });
     }},
    // rnn_backward(dxproj, dw_hh?, db_hh?, dh0?, dc0?, scratch, dout, dhN?, dcN?, ws?, out, w_hh, h0?, c0?, T, B, H, mode, accumulate)
    {"rnn_backward", {A::F32, A::F32Opt, A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32Opt, A::F32Opt, A::F32Opt, A::F32, A::F32, A::F32Opt, A::F32Opt,
                      A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED {
       const double T = s[0], B = s[1], H = s[2], G = rnn_gates(s[3]), S = rnn_ws(s[3]);
       return {T * B * G * H, G * H * H, G * H, B * H, B * H, 2 * B * H + (s[3] == 3 ? T * B * G * H : 0), T * B * H, B * H, B * H,
               T * B * S * H, T * B * H, G * H * H, B * H, B * H};
     },
     RUN {
       const bool lstm = z(c, 3) == 2;
       if (Status s = check_rnn("rnn_backward", c, 9); !s.ok()) return s;
       return ok([&] { return K::rnn_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), lstm ? f(c, 4) : nullptr, f(c, 5), f(c, 6), f(c, 7), lstm ? f(c, 8) : nullptr, f(c, 9), f(c, 10), f(c, 11), f(c, 12), lstm ? f(c, 13) : nullptr, z(c, 0), z(c, 1), z(c, 2), z(c, 3), b(c, 4)); });
     }},
    // attention_forward(out[B,T,H·D], probs[B,H,T,T], qkv[B,T,3·H·D], B, T, H, D, causal)
    {"attention_forward", {A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1] * s[2] * s[3], s[0] * s[2] * s[1] * s[1], s[0] * s[1] * 3 * s[2] * s[3]}; },
     RUN { return ok([&] { return K::attention_forward(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3), b(c, 4)); }); }},
    // attention_backward(dqkv[B,T,3·H·D], scratch[B,H,T,T], dout[B,T,H·D], qkv, probs, B, T, H, D, causal)
    {"attention_backward", {A::F32, A::F32, A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Bool},
     NEED { return {s[0] * s[1] * 3 * s[2] * s[3], s[0] * s[2] * s[1] * s[1], s[0] * s[1] * s[2] * s[3], s[0] * s[1] * 3 * s[2] * s[3], s[0] * s[2] * s[1] * s[1]}; },
     RUN { return ok([&] { return K::attention_backward(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), f(c, 4), z(c, 0), z(c, 1), z(c, 2), z(c, 3), b(c, 4)); }); }},

    // ---- generic tensor operations: shapes arrive as scalars d0…d5 (and strides s0…s5) ----
    // elementwise(out, a, b?, c?, op, alpha, beta, ndim, d0…d5, amask, bmask, cmask)
    {"elementwise", {A::F32, A::F32, A::F32Opt, A::F32Opt, A::Int, A::Float, A::Float, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size,
                     A::Size, A::Size, A::Size},
     NEED {
       const int ndim = static_cast<int>(s[3]);
       if (ndim > K::kMaxDims) return {NAN};
       auto count = [&](double mask) {
         double n = 1;
         for (int k = 0; k < ndim; k++) n *= (static_cast<int64_t>(mask) >> k & 1) ? 1 : s[4 + k];
         return n;
       };
       return {count(0), count(s[10]), count(s[11]), count(s[12])};
     },
     RUN {
       int64_t dims[K::kMaxDims];
       for (int k = 0; k < K::kMaxDims; k++) dims[k] = z(c, 4 + k);
       return K::elementwise(pool, f(c, 0), f(c, 1), f(c, 2), f(c, 3), static_cast<int>(z(c, 0)), x(c, 1), x(c, 2), static_cast<int>(z(c, 3)),
                             dims, static_cast<unsigned>(z(c, 10)), static_cast<unsigned>(z(c, 11)), static_cast<unsigned>(z(c, 12)));
     }},
    // reduce(out[outer,inner], idx[outer,inner]? int32, a[outer,R,inner], op, outer, R, inner)
    {"reduce", {A::F32, A::I32Opt, A::F32, A::Int, A::Size, A::Size, A::Size},
     NEED { return {s[1] * s[3], s[1] * s[3], s[1] * s[2] * s[3]}; },
     RUN { return K::reduce(pool, f(c, 0), c.buf[1] ? i32(c, 1) : nullptr, f(c, 2), static_cast<int>(z(c, 0)), z(c, 1), z(c, 2), z(c, 3)); }},
    // strided_copy(out[d…], a, ndim, offset, d0…d5, s0…s5)
    {"strided_copy", {A::Any32, A::Any32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size,
                      A::Size, A::Size},
     NEED { return strided_need(s); },
     RUN {
       int64_t dims[K::kMaxDims], strides[K::kMaxDims];
       for (int k = 0; k < K::kMaxDims; k++) dims[k] = z(c, 2 + k), strides[k] = z(c, 8 + k);
       return ok([&] { return K::strided_copy(pool, raw(c, 0), raw(c, 1), static_cast<int>(z(c, 0)), z(c, 1), dims, strides); });
     }},
    // strided_scatter(out, a[d…], ndim, offset, d0…d5, s0…s5, accumulate)
    {"strided_scatter", {A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size, A::Size,
                         A::Size, A::Size, A::Bool},
     NEED { std::vector<double> n = strided_need(s); return {n[1], n[0]}; },
     RUN {
       int64_t dims[K::kMaxDims], strides[K::kMaxDims];
       for (int k = 0; k < K::kMaxDims; k++) dims[k] = z(c, 2 + k), strides[k] = z(c, 8 + k);
       return ok([&] { return K::strided_scatter(pool, f(c, 0), f(c, 1), static_cast<int>(z(c, 0)), z(c, 1), dims, strides, b(c, 14)); });
     }},
    // bmm(out[batch,M,N], a, b, batch, M, N, K, transA, transB, strideA, strideB, alpha, beta)
    {"bmm", {A::F32, A::F32, A::F32, A::Size, A::Size, A::Size, A::Size, A::Bool, A::Bool, A::Size, A::Size, A::Float, A::Float},
     NEED {
       const double P = s[0], M = s[1], N = s[2], K = s[3];
       if (P == 0) return {0, 0, 0};
       return {P * M * N, (P - 1) * s[6] + M * K, (P - 1) * s[7] + K * N};
     },
     RUN { return ok([&] { return K::bmm(pool, f(c, 0), f(c, 1), f(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3), b(c, 4), b(c, 5), z(c, 6), z(c, 7), x(c, 8), x(c, 9)); }); }},
    // index_select(out[outer,n,inner], a[outer,D,inner], idx[n] int32, outer, D, inner, n)
    {"index_select", {A::Any32, A::Any32, A::I32, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[3] * s[2], s[0] * s[1] * s[2], s[3]}; },
     RUN { return K::index_select(pool, raw(c, 0), raw(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
    // index_add(out[outer,D,inner], src[outer,n,inner], idx[n] int32, outer, D, inner, n)
    {"index_add", {A::F32, A::F32, A::I32, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * s[2], s[0] * s[3] * s[2], s[3]}; },
     RUN { return K::index_add(pool, f(c, 0), f(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
    // gather(out[outer,n,inner], a[outer,D,inner], idx[outer,n,inner] int32, outer, D, n, inner)
    {"gather", {A::Any32, A::Any32, A::I32, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[2] * s[3], s[0] * s[1] * s[3], s[0] * s[2] * s[3]}; },
     RUN { return K::gather(pool, raw(c, 0), raw(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
    // scatter_add(out[outer,D,inner], src[outer,n,inner], idx[outer,n,inner] int32, outer, D, n, inner)
    {"scatter_add", {A::F32, A::F32, A::I32, A::Size, A::Size, A::Size, A::Size},
     NEED { return {s[0] * s[1] * s[3], s[0] * s[2] * s[3], s[0] * s[2] * s[3]}; },
     RUN { return K::scatter_add(pool, f(c, 0), f(c, 1), i32(c, 2), z(c, 0), z(c, 1), z(c, 2), z(c, 3)); }},
};

}  // namespace

const std::vector<KernelDef>& kernel_table() { return kTable; }

}  // namespace rg::addon
