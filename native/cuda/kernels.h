// The CUDA kernels of retrograd: the same functions as native/cpu/kernels.h (names, arguments, semantics),
// so that the addon's kernel table binds either set. Pointers are device memory; every kernel is launched on
// the backend's one stream and returns at once. The ThreadPool argument is unused (the queue's thread only
// launches). A launch that fails returns a CUDA_ERROR status naming the kernel; a kernel that finds bad data
// (a class index out of range, say) records it on the device, the kernels after it do nothing, and the next
// synchronisation reports it (device.cc).
//
// Gradient contract: parameter gradients ACCUMULATE (+=), everything else OVERWRITES, as on the CPU.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "../core/thread_pool.h"
#include "../core/storage.h"

namespace rg::cuda {

// ---- matrix products (gemm.cc) ----
// Activations the gemm epilogue can apply (the ones whose backward can be taken from the output).
enum class Activation { None, Relu, LeakyRelu };
// C = act(alpha · op(A) · op(B) + beta · C + bias[col]); bias may be null.
Status gemm_ex(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
             const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope);
// C[M,N] = alpha · op(A) · op(B) + beta · C, op(A) [M,K] stored as A[M,K] or, transposed, A[K,M];
// op(B) [K,N] stored as B[K,N] or, transposed, B[N,K]. beta == 0 never reads C (NaN in C is ignored).
Status gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, const float* B, float beta, float* C);

// ---- linear.cc ----
Status linear_forward(ThreadPool& pool, float* out, const float* inp, const float* weight,
                    const float* bias, int64_t B, int64_t C, int64_t OC, Activation act, float slope);
Status linear_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int64_t B, int64_t C, int64_t OC, bool accumulate);

// ---- activations.cc ----
Status relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
Status relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N);
Status leaky_relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N, float slope);
Status leaky_relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N,
                         float slope);
Status sigmoid_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
Status sigmoid_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N);
Status tanh_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
Status tanh_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N);
Status gelu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
Status gelu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N);
Status softmax_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C);
Status softmax_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t B,
                      int64_t C);
Status act_bias_backward(ThreadPool& pool, float* dz, float* dbias, const float* dout, const float* out, int64_t B,
                       int64_t OC, Activation act, float slope, bool accumulate);

// ---- losses.cc: value and gradient of the mean in one pass ----
Status mse_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target,
              int64_t N);
Status cross_entropy_loss(ThreadPool& pool, float* loss, float* dlogits, const float* logits,
                          const int32_t* target, int64_t B, int64_t C, int64_t D, int64_t ignore_index);
Status bce_with_logits_loss(ThreadPool& pool, float* loss, float* dpred, const float* logits,
                          const float* target, int64_t N);
Status l1_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N);
Status huber_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N,
                float delta);
Status bce_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target,
                int64_t N);

// ---- optim.cc: one pass over memory per parameter ----
Status sgd_step(ThreadPool& pool, float* param, float* momentum_buf, const float* grad, int64_t N,
              float lr, float momentum, float dampening, float weight_decay, bool nesterov,
              bool maximize, bool first_step);
Status adam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const float* grad, int64_t N, float lr, float beta1, float beta2, float eps,
               float weight_decay, int64_t step, bool amsgrad, bool decoupled, bool maximize);

Status rmsprop_step(ThreadPool& pool, float* param, float* square_avg, float* grad_avg, float* momentum_buf,
                  const float* grad, int64_t N, float lr, float alpha, float eps, float weight_decay, float momentum,
                  bool centered, bool maximize);
Status adagrad_step(ThreadPool& pool, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                  float weight_decay, bool maximize);

Status adamax_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int64_t step, bool maximize);
Status adadelta_step(ThreadPool& pool, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N,
                   float lr, float rho, float eps, float weight_decay, bool maximize);
Status nadam_radam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N,
                      float beta1, float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg,
                      bool radam, bool rectified);

// ---- tensor_ops.cc ----
Status fill(ThreadPool& pool, float* out, int64_t N, float value);
Status copy(ThreadPool& pool, void* out, const void* src, int64_t N);  // N 4-byte elements
Status axpy(ThreadPool& pool, float* out, const float* src, int64_t N, float alpha);  // out += alpha·src
Status gather_rows(ThreadPool& pool, void* out, const void* src, const int32_t* index, int64_t rows,
                   int64_t cols, int64_t src_rows, int64_t index_offset);
Status norm_accumulate(ThreadPool& pool, float* acc, const float* x, int64_t N, bool inf_norm);
Status clip_by_norm(ThreadPool& pool, float* x, const float* acc, int64_t N, float max_norm, bool inf_norm);
Status clamp(ThreadPool& pool, float* x, int64_t N, float lo, float hi);
Status penalty(ThreadPool& pool, float* acc, float* grad, const float* w, int64_t N, float l1, float l2);
Status accuracy_count(ThreadPool& pool, float* count, const float* logits, const int32_t* target,
                    int64_t B, int64_t C);

// ---- dropout.cc ----
Status dropout_forward(ThreadPool& pool, float* out, float* mask, const float* inp, int64_t N, float p,
                     uint32_t seed);
Status dropout_backward(ThreadPool& pool, float* dinp, const float* dout, const float* mask, int64_t N);

// ---- conv.cuh: convolution (im2col + gemm), pooling, batch normalisation; NCHW ----
Status im2col(ThreadPool& pool, float* col, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW);
Status col2im(ThreadPool& pool, float* dinp, const float* dcol, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW);
Status transpose01(ThreadPool& pool, float* out, const float* inp, const float* bias, int64_t A, int64_t Bd, int64_t R);
Status channel_sum(ThreadPool& pool, float* out, const float* x, int64_t B, int64_t C, int64_t R, bool accumulate);
Status maxpool2d_forward(ThreadPool& pool, float* out, int32_t* argmax, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW);
Status maxpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, const int32_t* argmax, int64_t B, int64_t C, int64_t H,
                        int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW);
Status avgpool2d_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                       int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad);
Status avgpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                        int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad);
Status batchnorm_forward(ThreadPool& pool, float* out, float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                       const float* inp, const float* weight, const float* bias, int64_t B, int64_t C, int64_t R, float momentum,
                       float eps, bool training);
Status batchnorm_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* save_mean, const float* save_invstd, int64_t B, int64_t C, int64_t R,
                        bool training, bool accumulate);
Status conv2d_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias, int64_t B, int64_t C,
                    int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH,
                    int64_t DW);
Status conv2d_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                     int64_t PW, int64_t DH, int64_t DW, bool accumulate);

// ---- runtime (kernels.cu): the stream, the precision of matrix products, device-side failures ----
Status start(void* stream);               // the stream every kernel runs on; the failure record
void set_tf32(bool on);                   // matrix products through TF32 tensor cores (sm_80 and newer)
// A failure that kernels recorded since the last call, as a Status; clears it (so that later kernels run).
// Call only once the device has finished the work in question.
Status take_failure();

}  // namespace rg::cuda
