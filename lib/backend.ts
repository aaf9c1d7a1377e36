// The kernel contract: every kernel once, with its shapes and semantics. Three implementations follow it:
// `reference` (pure TypeScript, lib/backends/reference/), `cpu` (native C++, native/cpu/) and `cuda`
// (native/cuda/, the same addon layer over CUDA kernels). Each kernel writes into outputs the caller provides
// (outputs first, then inputs, then sizes, then scalars), so a layer allocates its buffers once per batch shape.
//
// Gradient contract: parameter gradients (dweight, dbias) ACCUMULATE (+=); everything else OVERWRITES.
// Dimensions: B rows, C input features, OC output features, N elements.
import { RetrogradError } from './errors.js';

/** A backend's storage handle: a typed array on `reference`, a native storage on `cpu` and `cuda`. */
export type Buf = {
  /** Type-level only: a Buf is opaque, made and read by its backend. */
  readonly __brand: 'Buf';
};
/** The element type of a backend buffer. */
export type DType = 'float32' | 'int32' | 'float64';
type B = Buf;
/** A buffer, or null where a kernel's output or input is optional. */
export type Opt = Buf | null;

/** Activations a matrix product's epilogue applies: 0 none, 1 ReLU, 2 LeakyReLU. */
export type ActCode = 0 | 1 | 2;
export const ACT = { none: 0, relu: 1, leakyRelu: 2 } as const satisfies Record<string, ActCode>;

/**
 * The op codes of `elementwise`. Unary ops read a; binary ops a and b; `where` a (the condition), b and c. alpha and
 * beta are the op's scalars where it has any. Comparisons give float32 masks (1 true, 0 false). NaN propagates as in
 * PyTorch (relu, clamp, maximum, minimum of a NaN are NaN); pow follows JavaScript's Math.pow, so pow(1, NaN) and
 * pow(±1, ±∞) are NaN where PyTorch gives 1.
 */
export const EW = {
  identity: 0, // a (with broadcasting: expand / materialise)
  neg: 1, exp: 2, log: 3, log1p: 4, sqrt: 5, rsqrt: 6, abs: 7, sign: 8, sin: 9, cos: 10, tanh: 11, sigmoid: 12,
  relu: 13,
  gelu: 14, // erf form
  leakyRelu: 15, // slope alpha
  softplus: 16, // log(1 + e^(alpha·a)) / alpha, a itself where alpha·a > beta (PyTorch's beta and threshold)
  clamp: 17, // min(max(a, alpha), beta); NaN stays NaN
  square: 18, reciprocal: 19,
  powScalar: 20, // a^alpha
  affine: 21, // alpha·a + beta
  geluGrad: 22, // Φ(a) + a·φ(a), GELU's derivative
  add: 32, sub: 33, mul: 34, div: 35, pow: 36, maximum: 37, minimum: 38,
  eq: 39, ne: 40, lt: 41, le: 42, gt: 43, ge: 44,
  reluGrad: 45, // b ≤ 0 ? 0 : a (a the gradient, b ReLU's input; NaN passes the gradient, as PyTorch's)
  leakyReluGrad: 46, // b > 0 ? a : alpha·a
  maskedFill: 47, // b ≠ 0 ? alpha : a
  axpby: 48, // alpha·a + beta·b
  sigmoidGrad: 49, // a·b·(1 − b) (a the gradient, b sigmoid's output)
  tanhGrad: 50, // a·(1 − b²) (b tanh's output)
  where: 64, // a ≠ 0 ? b : c
} as const;
export type EwOp = (typeof EW)[keyof typeof EW];
/** Reductions of `reduce`. */
export const REDUCE = { sum: 0, max: 1, min: 2 } as const;
/** The most dimensions the generic kernels (elementwise, strided_copy, strided_scatter) take. */
export const MAX_DIMS = 6;

/** The recurrent cell of rnn_forward / rnn_backward, and its number of gates G. */
export const RNN_MODE = { tanh: 0, relu: 1, lstm: 2, gru: 3 } as const;
export const RNN_GATES = [1, 1, 4, 3] as const;
/** Floats per step of rnn_forward's ws, in units of B·H. */
export const RNN_WS = [0, 0, 5, 4] as const;

/**
 * The kernel contract: every kernel once, with its shapes and semantics, that the `reference`, `cpu` and `cuda`
 * backends implement alike. Each writes into outputs the caller provides (outputs first, then inputs, then sizes,
 * then scalars); parameter gradients accumulate (+=) where a kernel says so, everything else is overwritten.
 */
export interface Kernels {
  /** out[M,N] = alpha·op(a)·op(b) + beta·out; op(a) [M,K] is a[M,K] or (transA) a[K,M]; op(b) [K,N] is b[K,N] or (transB) b[N,K]. beta 0 ignores out. */
  matmul(out: B, a: B, b: B, M: number, N: number, K: number, transA: boolean, transB: boolean, alpha: number, beta: number): void;
  /** out[B,OC] = act(inp[B,C]·weight[OC,C]ᵀ + bias[OC]) (bias null: none; act an ActCode, slope for LeakyReLU). */
  linear_forward(out: B, inp: B, weight: B, bias: Opt, B: number, C: number, OC: number, act: ActCode, slope: number): void;
  /** dinp[B,C] = dout·weight; dweight[OC,C] (+)= doutᵀ·inp; dbias[OC] (+)= Σ_b dout (+= when accumulate, else =). A null output is skipped. */
  linear_backward(dinp: Opt, dweight: Opt, dbias: Opt, dout: B, inp: B, weight: B, B: number, C: number, OC: number, accumulate: boolean): void;
  /** dz[B,OC] = dout ⊙ act'(out), from the forward OUTPUT (ReLU, LeakyReLU with slope ≥ 0, none); dbias[OC] (+)= Σ_b dz. dz or dbias may be null. */
  act_bias_backward(dz: Opt, dbias: Opt, dout: B, out: B, B: number, OC: number, act: ActCode, slope: number, accumulate: boolean): void;

  /** out = max(inp, 0). */
  relu_forward(out: B, inp: B, N: number): void;
  /** dinp = dout · (inp > 0). */
  relu_backward(dinp: B, dout: B, inp: B, N: number): void;
  /** out = inp > 0 ? inp : slope·inp. */
  leaky_relu_forward(out: B, inp: B, N: number, slope: number): void;
  /** dinp = dout · (inp > 0 ? 1 : slope). */
  leaky_relu_backward(dinp: B, dout: B, inp: B, N: number, slope: number): void;
  /** out = 1 / (1 + e^−inp). */
  sigmoid_forward(out: B, inp: B, N: number): void;
  /** dinp = dout · out · (1 − out), from the forward output. */
  sigmoid_backward(dinp: B, dout: B, out: B, N: number): void;
  /** out = tanh(inp). */
  tanh_forward(out: B, inp: B, N: number): void;
  /** dinp = dout · (1 − out²), from the forward output. */
  tanh_backward(dinp: B, dout: B, out: B, N: number): void;
  /** out = inp · Φ(inp), erf form. */
  gelu_forward(out: B, inp: B, N: number): void;
  /** dinp = dout · (Φ(inp) + inp·φ(inp)). */
  gelu_backward(dinp: B, dout: B, inp: B, N: number): void;
  /** out[B,C] = softmax over the last dimension. */
  softmax_forward(out: B, inp: B, B: number, C: number): void;
  /** dinp = out ⊙ (dout − Σ_c dout·out), per row. */
  softmax_backward(dinp: B, dout: B, out: B, B: number, C: number): void;

  /** loss[0] = mean((pred − target)²); dpred = 2 (pred − target) / N. */
  mse_loss(loss: B, dpred: B, pred: B, target: B, N: number): void;
  /** logits [B,C,D], int32 target [B,D]: loss[0] = mean over non-ignored of −log softmax; dlogits = (softmax − onehot)/count. A target outside [0, C) fails the kernel. */
  cross_entropy_loss(loss: B, dlogits: B, logits: B, target: B, B: number, C: number, D: number, ignoreIndex: number): void;
  /** loss[0] = mean(max(x,0) − x·t + log(1 + e^−|x|)); dpred = (σ(x) − t) / N. */
  bce_with_logits_loss(loss: B, dpred: B, logits: B, target: B, N: number): void;
  /** loss[0] = mean|pred − target|; dpred = sign(pred − target) / N. */
  l1_loss(loss: B, dpred: B, pred: B, target: B, N: number): void;
  /** loss[0] = mean(½d² if |d| < delta else delta·(|d| − ½delta)), d = pred − target; dpred = clamp(d, ±delta) / N. */
  huber_loss(loss: B, dpred: B, pred: B, target: B, N: number, delta: number): void;
  /** loss[0] = −mean(t·log p + (1−t)·log(1−p)), logs clamped at −100; dpred = (p − t) / max(p(1−p), 1e-12) / N. p outside [0,1] fails. */
  bce_loss(loss: B, dpred: B, pred: B, target: B, N: number): void;

  /** PyTorch SGD on one parameter, in place (momentumBuf null when momentum is 0). */
  sgd_step(param: B, momentumBuf: Opt, grad: B, N: number, lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean, firstStep: boolean): void;
  /** PyTorch Adam (decoupled false) / AdamW (decoupled true) on one parameter, in place; step counts from 1. */
  adam_step(param: B, expAvg: B, expAvgSq: B, maxExpAvgSq: Opt, grad: B, N: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, amsgrad: boolean, decoupled: boolean, maximize: boolean): void;

  /** PyTorch RMSprop on one parameter, in place (gradAvg null unless centered; momentumBuf null unless momentum > 0). */
  rmsprop_step(param: B, squareAvg: B, gradAvg: Opt, momentumBuf: Opt, grad: B, N: number, lr: number, alpha: number, eps: number, weightDecay: number, momentum: number, centered: boolean, maximize: boolean): void;
  /** PyTorch Adagrad on one parameter, in place; clr = lr / (1 + (step − 1)·lrDecay). */
  adagrad_step(param: B, stateSum: B, grad: B, N: number, clr: number, eps: number, weightDecay: number, maximize: boolean): void;

  /** PyTorch Adamax on one parameter, in place; step counts from 1. */
  adamax_step(param: B, expAvg: B, expInf: B, grad: B, N: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, maximize: boolean): void;
  /** PyTorch Adadelta on one parameter, in place. */
  adadelta_step(param: B, squareAvg: B, accDelta: B, grad: B, N: number, lr: number, rho: number, eps: number, weightDecay: number, maximize: boolean): void;
  /** The moment updates of NAdam / RAdam and their step with per-step scalars from the caller (see native/cpu/optim.cc). */
  nadam_radam_step(param: B, expAvg: B, expAvgSq: B, grad: B, N: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc2: number, cGrad: number, cAvg: number, radam: boolean, rectified: boolean): void;

  /** out[i] = value. */
  fill(out: B, N: number, value: number): void;
  /** out[i] = src[i] (4-byte elements of either dtype). */
  copy(out: B, src: B, N: number): void;
  /** out += alpha · src. */
  axpy(out: B, src: B, N: number, alpha: number): void;
  /** out[r,:] = src[index[indexOffset + r], :]; an index outside [0, srcRows) fails the kernel. */
  gather_rows(out: B, src: B, index: B, rows: number, cols: number, srcRows: number, indexOffset: number): void;
  /** acc[0] += Σ x² (2-norm), or acc[0] = max(acc[0], max |x|) (infNorm). */
  norm_accumulate(acc: B, x: B, N: number, infNorm: boolean): void;
  /** x *= min(1, maxNorm / (total + 1e-6)), total = √acc[0] (2-norm) or acc[0] (infNorm). */
  clip_by_norm(x: B, acc: B, N: number, maxNorm: number, infNorm: boolean): void;
  /** x = clamp(x, lo, hi). */
  clamp(x: B, N: number, lo: number, hi: number): void;
  /** acc[0] += l1·Σ|w| + l2·Σw²; grad += l1·sign(w) + 2·l2·w. */
  penalty(acc: B, grad: B, w: B, N: number, l1: number, l2: number): void;
  /** count[0] += number of rows whose first largest logit is at the int32 target. */
  accuracy_count(count: B, logits: B, target: B, B: number, C: number): void;
  /** first[0] (int32) = index of the first NaN or infinity in x[N], or −1. With one and tag ≥ 0 the kernel fails with
   * RetrogradError NON_FINITE ("check_finite: tensor <tag> holds NaN at element <i>"), and a native queue skips the
   * kernels after it (an optimizer step) until a read reports it: fit's guard against a non-finite step. With tag ≥ 0
   * the failure sticks: when first[0] ≥ 0 already (an earlier check failed), it fails at once, until the caller sets
   * first[0] back to −1 (so a step queued before the failure was reported is refused too). */
  check_finite(first: B, x: B, N: number, tag: number): void;

  /** mask = keep ? 1/(1−p) : 0 with keep a hash of (seed, i); out = inp · mask. */
  dropout_forward(out: B, mask: B, inp: B, N: number, p: number, seed: number): void;
  /** dinp = dout · mask. */
  dropout_backward(dinp: B, dout: B, mask: B, N: number): void;

  // ---- convolution and pooling: NCHW, windows of KH × KW with stride SH, SW, zero padding PH, PW and dilation
  // DH, DW; OH = ⌊(H + 2·PH − DH·(KH − 1) − 1) / SH⌋ + 1 and OW likewise (the caller checks OH, OW ≥ 1) ----
  /**
   * col[C·KH·KW, B·OH·OW] from inp[B, C, H, W]: col[(c·KH + i)·KW + j, (b·OH + oh)·OW + ow] =
   * inp[b, c, oh·SH − PH + i·DH, ow·SW − PW + j·DW], 0 where that lies in the padding.
   */
  im2col(col: B, inp: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void;
  /** The adjoint of im2col: dinp[B, C, H, W] = Σ of the dcol entries im2col would take from each element (overwrite). */
  col2im(dinp: B, dcol: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void;
  /** out[b, a, r] = inp[a, b, r] + bias[a] (bias null: none), inp [A, Bd, R]: swaps the two leading dimensions. */
  transpose01(out: B, inp: B, bias: Opt, A: number, Bd: number, R: number): void;
  /** out[c] (+)= Σ_b Σ_r x[b, c, r] over x [B, C, R] (+= when accumulate, else =). */
  channel_sum(out: B, x: B, B: number, C: number, R: number, accumulate: boolean): void;
  /**
   * out[B, C, OH, OW] = the window maximum (padding is −∞; the first maximum in row-major window order, NaN wins);
   * argmax (int32) its index h·W + w in the input plane. Dilation 1.
   */
  maxpool2d_forward(out: B, argmax: B, inp: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number): void;
  /** dinp[B, C, H, W] = Σ of dout over the windows whose argmax is that element (overwrite). */
  maxpool2d_backward(dinp: B, dout: B, argmax: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number): void;
  /** out[B, C, OH, OW] = window sum / (countIncludePad ? KH·KW : the window's elements inside the input). */
  avgpool2d_forward(out: B, inp: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, countIncludePad: boolean): void;
  /** dinp[B, C, H, W] = Σ over the windows holding the element of dout / that window's divisor (overwrite). */
  avgpool2d_backward(dinp: B, dout: B, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, countIncludePad: boolean): void;
  /**
   * Batch normalisation of x [B, C, R] per channel c. training: mean and biased variance over (b, r); saveMean = mean,
   * saveInvstd = 1/√(var + eps); runMean = (1 − momentum)·runMean + momentum·mean, runVar likewise with the unbiased
   * variance (n/(n − 1)·var, n = B·R). Not training: the running statistics are used and copied into saveMean /
   * saveInvstd, and nothing is updated. out = (x − mean)·invstd·weight[c] + bias[c] (weight, bias null: 1 and 0).
   */
  batchnorm_forward(out: B, saveMean: B, saveInvstd: B, runMean: B, runVar: B, inp: B, weight: Opt, bias: Opt, B: number, C: number, R: number, momentum: number, eps: number, training: boolean): void;
  /**
   * The backward of batchnorm_forward from its saved statistics, x̂ = (x − mean)·invstd: dweight[c] (+)= Σ dout·x̂,
   * dbias[c] (+)= Σ dout (+= when accumulate); dinp = weight·invstd·(dout − mean_b,r(dout) − x̂·mean_b,r(dout·x̂))
   * when training, weight·invstd·dout when not (the statistics were constants). Null outputs are skipped.
   */
  batchnorm_backward(dinp: Opt, dweight: Opt, dbias: Opt, dout: B, inp: B, weight: Opt, saveMean: B, saveInvstd: B, B: number, C: number, R: number, training: boolean, accumulate: boolean): void;
  /**
   * out[B, OC, OH, OW] = the convolution of inp[B, C, H, W] with weight[OC, C, KH, KW] (+ bias[OC]): im2col, then
   * weight·col, then transpose01 with the bias, in one kernel (a backend may work through the batch in pieces).
   */
  conv2d_forward(out: B, inp: B, weight: B, bias: Opt, B: number, C: number, H: number, W: number, OC: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void;
  /**
   * The backward of conv2d_forward: dbias (+)= channel_sum(dout); dweight (+)= dY·colᵀ with dY = transpose01(dout)
   * [OC, B·OH·OW]; dinp = col2im(weightᵀ·dY) (overwrite). += when accumulate; null outputs are skipped.
   */
  conv2d_backward(dinp: Opt, dweight: Opt, dbias: Opt, dout: B, inp: B, weight: B, B: number, C: number, H: number, W: number, OC: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number, accumulate: boolean): void;

  // ---- sequences: embeddings (the forward is gather_rows) and layer normalisation ----
  /**
   * The gradient of an embedding lookup: dweight[index[r], :] (+)= dout[r, :] for r < rows, the rows of each
   * embedding added in ascending r (dweight [numEmbeddings, dim], int32 index [rows], dout [rows, dim]); without
   * accumulate dweight is zeroed first. An index outside [0, numEmbeddings) fails the kernel.
   */
  embedding_backward(dweight: B, index: B, dout: B, rows: number, dim: number, numEmbeddings: number, accumulate: boolean): void;
  /**
   * Layer normalisation of x [rows, dim] over its last dimension: mean and biased variance per row, saveMean /
   * saveInvstd [rows] = mean and 1/√(var + eps), out = (x − mean)·invstd·weight[d] + bias[d] (null: 1 and 0).
   */
  layernorm_forward(out: B, saveMean: B, saveInvstd: B, inp: B, weight: Opt, bias: Opt, rows: number, dim: number, eps: number): void;
  /**
   * Its backward from the saved statistics, x̂ = (x − mean)·invstd, g = dout·weight: dinp = invstd·(g − mean_d(g) −
   * x̂·mean_d(g·x̂)) (overwrite); dweight[d] (+)= Σ_rows dout·x̂, dbias[d] (+)= Σ_rows dout (+= when accumulate).
   */
  layernorm_backward(dinp: Opt, dweight: Opt, dbias: Opt, dout: B, inp: B, weight: Opt, saveMean: B, saveInvstd: B, rows: number, dim: number, accumulate: boolean): void;
  /** out[outOffset + i] = src[srcOffset + i] for i < N (float32): a slice of one buffer into another (per-layer states); the two ranges must not overlap. */
  copy_range(out: B, src: B, N: number, outOffset: number, srcOffset: number): void;

  // ---- recurrent layers: the whole sequence of one layer per call (modes in RNN_MODE) ----
  /**
   * One recurrent layer over T steps, time-major: xproj [T, B, G·H] holds x_t·W_ihᵀ + b_ih for every step (one GEMM
   * before the call); w_hh [G·H, H], b_hh [G·H]?; h0, c0 [B, H]? (null: zeros; c0 for LSTM only). Per step the
   * hidden projection h_{t−1}·W_hhᵀ + b_hh is added, with PyTorch's gate order and formulas:
   *   RNN  h = tanh|relu(xp + hp)                                   (G = 1)
   *   LSTM i, f, g, o = σ, σ, tanh, σ of (xp + hp); c = f·c' + i·g; h = o·tanh(c)        (G = 4)
   *   GRU  r, z = σ(xr + hr), σ(xz + hz); n = tanh(xn + r·hn); h = (1 − z)·n + z·h'      (G = 3)
   * out [T, B, H] = h_t; hN [B, H] = h_{T−1}; cN [B, H] = c_{T−1} (LSTM, else null). ws [T, ·] keeps what the
   * backward needs, per step: LSTM [B, 4H] activated gates then [B, H] c_t (5·B·H); GRU [B, 3H] r, z, n then [B, H]
   * hn = h'·W_hnᵀ + b_hn (4·B·H); RNN none (null).
   */
  rnn_forward(out: B, hN: B, cN: Opt, ws: Opt, xproj: B, w_hh: B, b_hh: Opt, h0: Opt, c0: Opt, T: number, B: number, H: number, mode: number): void;
  /**
   * Backpropagation through time over the forward's saved steps, last to first: dxproj [T, B, G·H] = the gradient
   * of the gates' pre-activations through the input projection (overwrite); dw_hh [G·H, H]? (+)= Σ_t dgates_hᵀ·h_{t−1},
   * db_hh [G·H]? (+)= Σ_t dgates_h; dh0, dc0 [B, H]? the gradient of the initial state (overwrite). dout [T, B, H]
   * is the gradient of the output sequence, dhN / dcN [B, H]? that of the final state (null: zero). scratch:
   * 2·B·H floats, plus T·B·3H for GRU (its hidden-side gate gradients); its contents are not part of the result.
   */
  rnn_backward(dxproj: B, dw_hh: Opt, db_hh: Opt, dh0: Opt, dc0: Opt, scratch: B, dout: B, dhN: Opt, dcN: Opt, ws: Opt, out: B, w_hh: B, h0: Opt, c0: Opt, T: number, B: number, H: number, mode: number, accumulate: boolean): void;

  // ---- attention ----
  /**
   * Scaled dot-product self-attention of H heads of width D over qkv [B, T, 3·H·D] (each row q | k | v, head h at
   * columns h·D… of each, as PyTorch's in_proj output): probs [B, H, T, T] = softmax_j(q_i·k_j / √D) (with causal,
   * j > i is excluded and its probability is 0), out [B, T, H·D] = Σ_j probs_ij·v_j, heads side by side.
   */
  attention_forward(out: B, probs: B, qkv: B, B: number, T: number, H: number, D: number, causal: boolean): void;
  /**
   * Its backward: dqkv [B, T, 3·H·D] (overwrite) from dout [B, T, H·D] and the forward's qkv and probs. dS = P∘(dP −
   * Σ_j dP∘P) with dP = dout·vᵀ; dq = dS·k/√D, dk = dSᵀ·q/√D, dv = Pᵀ·dout. scratch [B, H, T, T] (contents not part
   * of the result).
   */
  attention_backward(dqkv: B, scratch: B, dout: B, qkv: B, probs: B, B: number, T: number, H: number, D: number, causal: boolean): void;

  // ---- generic tensor operations (the glue of models written op by op; lib/ops/) ----
  /**
   * out = op(a, b?, c?) with NumPy broadcasting over up to 6 dimensions. out is contiguous of shape [d0 … d(ndim−1)]
   * (unused dimensions 1); each input is contiguous with that shape except where bit k of its mask is set, where its
   * dimension k is 1 (broadcast). op an EW code; alpha, beta its scalars. Float32 only.
   */
  elementwise(out: B, a: B, b: Opt, c: Opt, op: number, alpha: number, beta: number, ndim: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, amask: number, bmask: number, cmask: number): void;
  /** elementwise without broadcasting: a (and b, c where the op reads them) contiguous with N elements each, as out. The short
   * call of the common case (a third of elementwise's arguments, each a cost of a native call). */
  elementwise_flat(out: B, a: B, b: Opt, c: Opt, op: number, alpha: number, beta: number, N: number): void;
  /**
   * out[o, i] = op over r of a[o, r, i] for a [outer, R, inner] (sum: in r order, in double; max / min: the first
   * extreme, NaN winning as in PyTorch), and idx[o, i] (int32, optional) = the r where max / min found it. R = 0
   * gives 0 for sum, and max / min are refused (their identity is not defined).
   */
  reduce(out: B, idx: Opt, a: B, op: number, outer: number, R: number, inner: number): void;
  /** out [d0 … d(ndim−1)] (contiguous, 4-byte elements of any dtype) = a[offset + Σ_k i_k·s_k]: permute, transpose,
   * narrow, slice, expand (stride 0) and materialising a view. */
  strided_copy(out: B, a: B, ndim: number, offset: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, s0: number, s1: number, s2: number, s3: number, s4: number, s5: number): void;
  /** out[offset + Σ_k i_k·s_k] = a[i] (accumulate: +=) for a contiguous [d0 … d(ndim−1)]; the positions must be distinct
   * (cat, stack, the gradients of narrow and slice). */
  strided_scatter(out: B, a: B, ndim: number, offset: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, s0: number, s1: number, s2: number, s3: number, s4: number, s5: number, accumulate: boolean): void;
  /** For p < batch: out_p [M,N] = alpha·op(a_p)·op(b_p) + beta·out_p, a_p = a + p·strideA, b_p = b + p·strideB (stride 0
   * broadcasts), out_p = out + p·M·N; op as matmul's. */
  bmm(out: B, a: B, b: B, batch: number, M: number, N: number, K: number, transA: boolean, transB: boolean, strideA: number, strideB: number, alpha: number, beta: number): void;
  /** out [outer, n, inner] = a [outer, D, inner] at idx[j] along D (4-byte elements of any dtype); an index outside
   * [0, D) fails the kernel. */
  index_select(out: B, a: B, idx: B, outer: number, D: number, inner: number, n: number): void;
  /** out [outer, D, inner] += src [outer, n, inner] at idx[j] along D, j in order (deterministic); bad indices fail. */
  index_add(out: B, src: B, idx: B, outer: number, D: number, inner: number, n: number): void;
  /** out [outer, n, inner] = a[o, idx[o, j, i], i] for a [outer, D, inner] (torch.gather along the middle axis). */
  gather(out: B, a: B, idx: B, outer: number, D: number, n: number, inner: number): void;
  /** out [outer, D, inner] += src[o, j, i] at out[o, idx[o, j, i], i], j in order (torch.scatter_add_, deterministic). */
  scatter_add(out: B, src: B, idx: B, outer: number, D: number, n: number, inner: number): void;
}

/** The name of a kernel of the contract ({@link Kernels}), as checkKernels takes it. */
export type KernelName = keyof Kernels;

/** Every kernel name, in the native table's order. */
export const KERNEL_NAMES = [
  'matmul', 'linear_forward', 'linear_backward', 'act_bias_backward',
  'relu_forward', 'relu_backward', 'leaky_relu_forward', 'leaky_relu_backward', 'sigmoid_forward',
  'sigmoid_backward', 'tanh_forward', 'tanh_backward', 'gelu_forward', 'gelu_backward', 'softmax_forward',
  'softmax_backward',
  'mse_loss', 'cross_entropy_loss', 'bce_with_logits_loss', 'l1_loss', 'huber_loss', 'bce_loss',
  'sgd_step', 'adam_step', 'rmsprop_step', 'adagrad_step', 'adamax_step', 'adadelta_step', 'nadam_radam_step',
  'fill', 'copy', 'axpy', 'gather_rows', 'norm_accumulate', 'clip_by_norm', 'clamp', 'penalty', 'accuracy_count', 'check_finite',
  'dropout_forward', 'dropout_backward',
  'im2col', 'col2im', 'transpose01', 'channel_sum', 'maxpool2d_forward', 'maxpool2d_backward', 'avgpool2d_forward',
  'avgpool2d_backward', 'batchnorm_forward', 'batchnorm_backward', 'conv2d_forward', 'conv2d_backward',
  'embedding_backward', 'layernorm_forward', 'layernorm_backward', 'copy_range', 'rnn_forward', 'rnn_backward',
  'attention_forward', 'attention_backward',
  'elementwise', 'elementwise_flat', 'reduce', 'strided_copy', 'strided_scatter', 'bmm', 'index_select', 'index_add', 'gather', 'scatter_add',
] as const satisfies readonly KernelName[];

/** Host data a backend buffer is written from or read into. */
export type HostArray = Float32Array | Int32Array | Float64Array;

/** What rg.backends() reports of one backend. */
export interface BackendInfo {
  /** 'cpu', 'cuda' or 'reference'. */
  name: string;
  /** Whether it can run here. */
  available: boolean;
  /** Why it cannot, when it cannot (what was tried and what to do). */
  reason?: string;
  /** CPU features and thread count, or the CUDA device's name, compute capability and memory. */
  detail: Record<string, unknown>;
}

/**
 * One implementation of the kernels with its storage: what a tensor's `backend` is. The library calls it; user
 * code meets it through `tensor.backend`, `module.backend` and checkKernels.
 */
export interface Backend {
  /** 'cpu', 'cuda' or 'reference'. */
  readonly name: string;
  /** dtype of floating tensors on this backend: float32, or float64 for gradient checks on the reference. */
  readonly floatType: 'float32' | 'float64';
  /** true when kernels run off the main thread (a read then yields to the event loop while it waits). */
  readonly async: boolean;
  /** The kernels, called with this backend's buffers. */
  readonly k: Kernels;
  /** A new buffer, zero-filled; `zero` false (native backends) leaves the contents to the kernel that overwrites them. */
  alloc(dtype: DType, size: number, zero?: boolean): Buf;
  /** A new buffer holding a copy of host data (float data takes the backend's float type). */
  fromHost(data: HostArray): Buf;
  /** Queued copy of host data (taken now) into a buffer of the same size and dtype. */
  write(buf: Buf, data: HostArray): void;
  /** A copy of the buffer, after everything queued before has run. */
  read(buf: Buf): HostArray;
  /** read() without blocking the event loop while queued work runs. */
  readAsync(buf: Buf): Promise<HostArray>;
  /** Waits until everything queued has run. */
  sync(): void;
  /** sync() without blocking the event loop. */
  syncAsync(): Promise<void>;
  /** Frees buf. `floatElements`: buf is a float storage of at least that many elements that nothing else uses (a tensor's
   * own storage), which a backend may keep for an alloc of that size. */
  dispose(buf: Buf, floatElements?: number): void;
  /** Live tensors and their bytes; device backends add the bytes in use and cached by their allocator. */
  memory(): {
    /** Live tensors (buffers not yet freed). */
    tensors: number;
    /** Their bytes. */
    bytes: number;
    /** Device memory the allocator has handed out (GPU backends). */
    deviceBytesInUse?: number;
    /** Device memory the allocator holds for reuse (GPU backends). */
    deviceBytesCached?: number;
  };
  /** This backend's entry of rg.backends(). */
  info(): BackendInfo;
  /**
   * The precision of the matrix products queued from now on: rg.setMatmulPrecision's, or 'bfloat16' inside
   * rg.autocast. Backends without the hardware for one ignore it (their products stay float32).
   */
  setMatmulPrecision?(precision: ProductPrecision): void;
  /**
   * @internal Native backends: an all-reduce (sum, or mean) of float buffers over the ranks of rg.distributed, queued
   * with the kernels: the buffers are gathered after the kernels queued before and handed to the MPI addon's
   * communication thread (`table`, its collectives()), which first checks that every rank passed `shape`. wait()
   * queues the wait for the result and its copy back into the buffers; kernels queued in between run meanwhile.
   * `table` 'device': through the device's own communicator (deviceCollectivesInit), which checks nothing; `after`
   * (a check through MPI: no buffers, the shape) must have passed, else it is skipped on every rank.
   */
  allReduce?(table: unknown, bufs: Buf[], mean: boolean, shape: readonly number[], after?: QueuedCollective): QueuedCollective;
  /** @internal Native backends: as allReduce, rank `root`'s values copied into every rank's buffers (through MPI). */
  broadcast?(table: unknown, bufs: Buf[], root: number, shape: readonly number[]): QueuedCollective;
  /** @internal Native backends: a new id for the device's own communicator (NCCL on cuda); throws where there is none. */
  deviceCollectivesId?(): Uint8Array;
  /** @internal Queues the joining of the device communicator `id` (every rank at once); then allReduce(table 'device'). */
  deviceCollectivesInit?(id: Uint8Array, rank: number, size: number): void;
}

/** @internal An all-reduce queued by Backend.allReduce. */
export interface QueuedCollective {
  /** Queues the wait for the result and its copy into the buffers (call once). */
  wait(): void;
  /** Once the wait has run: milliseconds from the hand-over to the result, and how long the queue waited for it. */
  times(): { communicationMs: number; waitedMs: number } | undefined;
  /** The addon's handle. */
  readonly handle: unknown;
}

// ---- the registry ----

type Loader = () => Backend;
const loaders = new Map<string, { load: Loader; probe: () => BackendInfo }>();
const loaded = new Map<string, Backend>();
let current: Backend | undefined;
let warned = false;

export function registerBackend(name: string, load: Loader, probe: () => BackendInfo): void {
  loaders.set(name, { load, probe });
}

/** @internal The backends loaded so far. */
export function loadedBackends(): Backend[] {
  return [...loaded.values()];
}

/** The backend named `name`, loading it on first use. Throws when it cannot load. */
export function backendByName(name: string): Backend {
  const have = loaded.get(name);
  if (have) return have;
  const entry = loaders.get(name);
  if (!entry) throw new RangeError(`setBackend: unknown backend '${String(name)}'; known: ${[...loaders.keys()].join(', ')}`);
  const b = entry.load();
  b.setMatmulPrecision?.(productPrecision());
  loaded.set(name, b);
  return b;
}

/** How matrix products run: exact float32, TF32 tensor cores, or bfloat16 operands with float32 sums (autocast). */
export type ProductPrecision = 'highest' | 'tf32' | 'bfloat16';

let matmulPrecision: 'highest' | 'tf32' = 'highest';
let autocastDepth = 0;
const applyPrecision = () => {
  for (const b of loaded.values()) b.setMatmulPrecision?.(productPrecision());
};

/** Like torch.set_float32_matmul_precision: 'highest' (exact float32) or 'tf32' (tensor cores on GPUs that have them). */
export function setMatmulPrecision(precision: 'highest' | 'tf32'): void {
  if (precision !== 'highest' && precision !== 'tf32')
    throw new RangeError(`setMatmulPrecision: expected 'highest' or 'tf32', got ${String(precision)}`);
  matmulPrecision = precision;
  applyPrecision();
}
/** The precision set by setMatmulPrecision ('highest' by default). */
export function getMatmulPrecision(): 'highest' | 'tf32' {
  return matmulPrecision;
}

/**
 * Mixed precision, as torch.autocast('cpu' | 'cuda', torch.bfloat16): inside `fn`, matrix products and convolutions
 * (Linear, matmul, bmm, Conv1d/2d and their transposes, attention, recurrent layers, forward and backward) take
 * their operands rounded to bfloat16 and sum in float32; everything else — elementwise work, reductions, softmax,
 * normalisation, losses, the optimizer's state and the weights themselves — stays float32. Unlike PyTorch, the
 * products' outputs are kept in float32 rather than rounded to bfloat16 (they are as accurate as PyTorch's or more).
 *
 * Runs on CPUs with AVX512-BF16 (`rg.backends()`: the cpu backend's `detail.bf16Products` is 'avx512bf16');
 * elsewhere, and on the reference and CUDA backends, the products stay float32 and `fn` runs as it would without.
 *
 * Returns what `fn` returns. When that is a promise (`await model.fit(…)`), the region lasts until it settles; work
 * queued by other code in the meantime runs under it too.
 */
export function autocast<T>(dtype: 'bfloat16', fn: () => T): T {
  if (dtype !== 'bfloat16') throw new RangeError(`autocast: expected 'bfloat16', got ${JSON.stringify(dtype)}`);
  if (typeof fn !== 'function') throw new TypeError(`autocast: expected a function to run, got ${typeof fn}`);
  const leave = () => {
    autocastDepth--;
    if (autocastDepth === 0) applyPrecision();
  };
  if (autocastDepth++ === 0) applyPrecision();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    leave();
    throw e;
  }
  if (result instanceof Promise) return result.finally(leave) as T;
  leave();
  return result;
}
/** The precision products queued now take: 'bfloat16' inside rg.autocast, else rg.setMatmulPrecision's. */
export function productPrecision(): ProductPrecision {
  return autocastDepth > 0 ? 'bfloat16' : matmulPrecision;
}
/** Whether code running now is inside rg.autocast. */
export function isAutocastEnabled(): boolean {
  return autocastDepth > 0;
}

/** Every backend with whether it can run here and why not. */
export function backends(): BackendInfo[] {
  return [...loaders.entries()].map(([, e]) => e.probe());
}

/**
 * Makes `name` the current backend: where new tensors and layers are made. Loads it on first use (the CUDA addon
 * only then); an unknown name is a RangeError naming it and the known ones, a backend that cannot load throws
 * why. Existing tensors and modules stay where they are (move them with `.to(name)`).
 */
export function setBackend(name: 'cpu' | 'cuda' | 'reference'): void {
  if (typeof name !== 'string') throw new TypeError(`setBackend: expected a backend name, got ${String(name)}`);
  current = backendByName(name);
}

/**
 * The current backend's name: the one set, else the environment variable RETROGRAD_BACKEND, else 'cpu', else
 * 'reference' (with a one-time warning saying why the native addon did not load).
 */
export function getBackend(): string {
  return currentBackend().name;
}

/** The current backend: the one chosen, else RETROGRAD_BACKEND, else cpu, else reference with a warning. */
export function currentBackend(): Backend {
  if (current) return current;
  const env = process.env.RETROGRAD_BACKEND;
  if (env) {
    current = backendByName(env);
    return current;
  }
  try {
    current = backendByName('cpu');
  } catch (e) {
    if (!warned) {
      warned = true;
      const why = e instanceof Error ? e.message : String(e);
      process.emitWarning(`retrograd: the native CPU backend could not be loaded, using the slow reference backend.\n${why}`, 'RetrogradWarning');
    }
    current = backendByName('reference');
  }
  return current;
}

export function nativeLoadError(message: string): RetrogradError {
  return new RetrogradError(message, 'NATIVE_LOAD_FAILED');
}
