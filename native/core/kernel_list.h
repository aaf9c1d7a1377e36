// Every kernel of retrograd, declared once for both native backends: native/cpu/kernels.h includes this list
// inside namespace rg::cpu with RG_KERNEL defined as void (the CPU kernels cannot fail, except the three that
// return a Status), native/cuda/kernels.h inside namespace rg::cuda with RG_KERNEL defined as Status (every launch
// can). The addon's kernel table binds either set by these names. Each kernel takes the thread pool first (unused
// by the CUDA kernels), then outputs, then inputs, then sizes, then scalars — the order of the kernel contract in
// lib/backend.ts. No include guard and no includes: it is meant to be included inside a namespace.
//
// Dimensions: B rows (batch, or every leading dimension flattened), C input features, OC output features,
// N elements, K the reduced dimension of a matrix product.
//
// Gradient contract: parameter gradients (dweight, dbias) ACCUMULATE (+=); activation gradients (dinp)
// and every forward output OVERWRITE (=). Every kernel is deterministic for a given thread count.

// ---- matrix products (cpu/gemm.cc, cuda/gemm.cu) ----
// C = act(alpha · op(A) · op(B) + beta · C + bias[col]); bias may be null.
RG_KERNEL gemm_ex(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
             const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope);
// C[M,N] = alpha · op(A) · op(B) + beta · C, op(A) [M,K] stored as A[M,K] or, transposed, A[K,M];
// op(B) [K,N] stored as B[K,N] or, transposed, B[N,K]. beta == 0 never reads C (NaN in C is ignored).
RG_KERNEL gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, const float* B, float beta, float* C);

// ---- linear.cc ----
RG_KERNEL linear_forward(ThreadPool& pool, float* out, const float* inp, const float* weight,
                    const float* bias, int64_t B, int64_t C, int64_t OC, Activation act, float slope);
RG_KERNEL linear_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int64_t B, int64_t C, int64_t OC, bool accumulate);

// ---- activations.cc ----
RG_KERNEL relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
RG_KERNEL relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N);
RG_KERNEL leaky_relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N, float slope);
RG_KERNEL leaky_relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N,
                         float slope);
RG_KERNEL sigmoid_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
RG_KERNEL sigmoid_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N);
RG_KERNEL tanh_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
RG_KERNEL tanh_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N);
RG_KERNEL gelu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N);
RG_KERNEL gelu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N);
RG_KERNEL softmax_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C);
RG_KERNEL softmax_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t B,
                      int64_t C);
RG_KERNEL act_bias_backward(ThreadPool& pool, float* dz, float* dbias, const float* dout, const float* out, int64_t B,
                       int64_t OC, Activation act, float slope, bool accumulate);

// ---- losses.cc: value and gradient of the mean in one pass ----
RG_KERNEL mse_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target,
              int64_t N);
Status cross_entropy_loss(ThreadPool& pool, float* loss, float* dlogits, const float* logits,
                          const int32_t* target, int64_t B, int64_t C, int64_t D, int64_t ignore_index);
RG_KERNEL bce_with_logits_loss(ThreadPool& pool, float* loss, float* dpred, const float* logits,
                          const float* target, int64_t N);
RG_KERNEL l1_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N);
RG_KERNEL huber_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N,
                float delta);
Status bce_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target,
                int64_t N);

// ---- optim.cc: one pass over memory per parameter ----
RG_KERNEL sgd_step(ThreadPool& pool, float* param, float* momentum_buf, const float* grad, int64_t N,
              float lr, float momentum, float dampening, float weight_decay, bool nesterov,
              bool maximize, bool first_step);
RG_KERNEL adam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
               const float* grad, int64_t N, float lr, float beta1, float beta2, float eps,
               float weight_decay, int64_t step, bool amsgrad, bool decoupled, bool maximize);

RG_KERNEL rmsprop_step(ThreadPool& pool, float* param, float* square_avg, float* grad_avg, float* momentum_buf,
                  const float* grad, int64_t N, float lr, float alpha, float eps, float weight_decay, float momentum,
                  bool centered, bool maximize);
RG_KERNEL adagrad_step(ThreadPool& pool, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                  float weight_decay, bool maximize);

RG_KERNEL adamax_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int64_t step, bool maximize);
RG_KERNEL adadelta_step(ThreadPool& pool, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N,
                   float lr, float rho, float eps, float weight_decay, bool maximize);
RG_KERNEL nadam_radam_step(ThreadPool& pool, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N,
                      float beta1, float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg,
                      bool radam, bool rectified);

// ---- tensor_ops.cc ----
RG_KERNEL fill(ThreadPool& pool, float* out, int64_t N, float value);
RG_KERNEL copy(ThreadPool& pool, void* out, const void* src, int64_t N);  // N 4-byte elements
RG_KERNEL axpy(ThreadPool& pool, float* out, const float* src, int64_t N, float alpha);  // out += alpha·src
Status gather_rows(ThreadPool& pool, void* out, const void* src, const int32_t* index, int64_t rows,
                   int64_t cols, int64_t src_rows, int64_t index_offset);
RG_KERNEL norm_accumulate(ThreadPool& pool, float* acc, const float* x, int64_t N, bool inf_norm);
RG_KERNEL clip_by_norm(ThreadPool& pool, float* x, const float* acc, int64_t N, float max_norm, bool inf_norm);
RG_KERNEL clamp(ThreadPool& pool, float* x, int64_t N, float lo, float hi);
RG_KERNEL penalty(ThreadPool& pool, float* acc, float* grad, const float* w, int64_t N, float l1, float l2);
RG_KERNEL accuracy_count(ThreadPool& pool, float* count, const float* logits, const int32_t* target,
                    int64_t B, int64_t C);
// first[0] = index of the first NaN or infinity in x[N], or -1. With one and tag >= 0 the kernel FAILS (NON_FINITE,
// naming tag, index and value), so that the queue skips the kernels after it (an optimizer step) until a read. With
// tag >= 0 the failure sticks: first[0] >= 0 on entry fails at once (until the caller resets it to -1).
Status check_finite(ThreadPool& pool, int32_t* first, const float* x, int64_t N, int64_t tag);

// ---- dropout.cc ----
RG_KERNEL dropout_forward(ThreadPool& pool, float* out, float* mask, const float* inp, int64_t N, float p,
                     uint32_t seed);
RG_KERNEL dropout_backward(ThreadPool& pool, float* dinp, const float* dout, const float* mask, int64_t N);

// ---- conv.cc: convolution (im2col + gemm), pooling, batch normalisation; NCHW ----
RG_KERNEL im2col(ThreadPool& pool, float* col, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW);
RG_KERNEL col2im(ThreadPool& pool, float* dinp, const float* dcol, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW);
RG_KERNEL transpose01(ThreadPool& pool, float* out, const float* inp, const float* bias, int64_t A, int64_t Bd, int64_t R);
RG_KERNEL channel_sum(ThreadPool& pool, float* out, const float* x, int64_t B, int64_t C, int64_t R, bool accumulate);
RG_KERNEL maxpool2d_forward(ThreadPool& pool, float* out, int32_t* argmax, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW);
RG_KERNEL maxpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, const int32_t* argmax, int64_t B, int64_t C, int64_t H,
                        int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW);
RG_KERNEL avgpool2d_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                       int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad);
RG_KERNEL avgpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                        int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad);
RG_KERNEL batchnorm_forward(ThreadPool& pool, float* out, float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                       const float* inp, const float* weight, const float* bias, int64_t B, int64_t C, int64_t R, float momentum,
                       float eps, bool training);
RG_KERNEL batchnorm_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* save_mean, const float* save_invstd, int64_t B, int64_t C, int64_t R,
                        bool training, bool accumulate);
RG_KERNEL conv2d_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias, int64_t B, int64_t C,
                    int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH,
                    int64_t DW);
RG_KERNEL conv2d_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                     int64_t PW, int64_t DH, int64_t DW, bool accumulate);

// ---- sequences (cpu/sequence.cc, cuda/sequence.cu): the embedding gradient, layer normalisation ----
Status embedding_backward(ThreadPool& pool, float* dweight, const int32_t* index, const float* dout, int64_t rows, int64_t dim,
                          int64_t num_embeddings, bool accumulate);
RG_KERNEL layernorm_forward(ThreadPool& pool, float* out, float* save_mean, float* save_invstd, const float* inp, const float* weight,
                            const float* bias, int64_t rows, int64_t dim, float eps);
RG_KERNEL layernorm_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                             const float* weight, const float* save_mean, const float* save_invstd, int64_t rows, int64_t dim,
                             bool accumulate);
RG_KERNEL copy_range(ThreadPool& pool, float* out, const float* src, int64_t N, int64_t out_offset, int64_t src_offset);

// ---- recurrent layers (cpu/recurrent.cc, cuda/recurrent.cu): one layer over a whole sequence; mode 0 tanh, 1 relu,
// 2 LSTM, 3 GRU ----
RG_KERNEL rnn_forward(ThreadPool& pool, float* out, float* hN, float* cN, float* ws, const float* xproj, const float* w_hh,
                      const float* b_hh, const float* h0, const float* c0, int64_t T, int64_t B, int64_t H, int64_t mode);
RG_KERNEL rnn_backward(ThreadPool& pool, float* dxproj, float* dw_hh, float* db_hh, float* dh0, float* dc0, float* scratch,
                       const float* dout, const float* dhN, const float* dcN, const float* ws, const float* out, const float* w_hh,
                       const float* h0, const float* c0, int64_t T, int64_t B, int64_t H, int64_t mode, bool accumulate);

// ---- attention (cpu/attention.cc, cuda/attention.cu): qkv [B, T, 3·H·D], probs and scratch [B, H, T, T] ----
RG_KERNEL attention_forward(ThreadPool& pool, float* out, float* probs, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t D,
                            bool causal);
RG_KERNEL attention_backward(ThreadPool& pool, float* dqkv, float* scratch, const float* dout, const float* qkv, const float* probs,
                             int64_t B, int64_t T, int64_t H, int64_t D, bool causal);

// ---- generic tensor operations (cpu/ops.cc, cuda/ops.cu), the glue of models written op by op; the op codes are
// lib/backend.ts's EW and REDUCE. Up to kMaxDims dimensions; dims[k] and strides[k] for k < ndim. ----
constexpr int kMaxDims = 6;
// out [dims] = op(a, b?, c?), broadcasting: an input is contiguous with out's shape but 1 where bit k of its mask is set.
Status elementwise(ThreadPool& pool, float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta,
                   int ndim, const int64_t* dims, unsigned amask, unsigned bmask, unsigned cmask);
// out[o, i] = op_r a[o, r, i]; idx[o, i] the r of max / min (optional). sum in r order, in double.
Status reduce(ThreadPool& pool, float* out, int32_t* idx, const float* a, int op, int64_t outer, int64_t R, int64_t inner);
// out [dims] (contiguous) = a[offset + Σ i_k·strides_k], 4-byte elements.
RG_KERNEL strided_copy(ThreadPool& pool, void* out, const void* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides);
// out[offset + Σ i_k·strides_k] (+)= a[i]; the positions are distinct.
RG_KERNEL strided_scatter(ThreadPool& pool, float* out, const float* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides,
                          bool accumulate);
// out_p = alpha·op(a + p·stride_a)·op(b + p·stride_b) + beta·out_p, out_p = out + p·M·N.
RG_KERNEL bmm(ThreadPool& pool, float* out, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a,
              bool trans_b, int64_t stride_a, int64_t stride_b, float alpha, float beta);
// Index kernels along the middle axis of [outer, D, inner]; an index outside [0, D) fails the kernel.
Status index_select(ThreadPool& pool, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n);
Status index_add(ThreadPool& pool, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n);
Status gather(ThreadPool& pool, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner);
Status scatter_add(ThreadPool& pool, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner);
