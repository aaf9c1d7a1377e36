// Recurrent layers as PyTorch has them: RNN (tanh or ReLU), LSTM and GRU, stacked numLayers deep, input [T, B, I]
// (batchFirst: [B, T, I]; unbatched: [T, I]), output the last layer's hidden state at every step. Parameters per layer
// k: weight_ih_lk [G·H, in], weight_hh_lk [G·H, H], bias_ih_lk and bias_hh_lk [G·H], gate blocks in PyTorch's order
// (LSTM i f g o, GRU r z n), all initialised U(−1/√H, 1/√H).
//   forward   per layer: xproj = x·W_ihᵀ + b_ih for every step at once (linear_forward), then the steps in order
//             (rnn_forward: h_{t−1}·W_hhᵀ + b_hh and the cell); the next layer reads this layer's outputs.
//   backward  backpropagation through time, last layer first: rnn_backward walks the steps last to first and gives
//             the gradient of every step's gate pre-activations, from which linear_backward takes dW_ih, db_ih
//             and the gradient of the layer's input (the layer below's output, or dx).
// State: `.initialState = h0` ([numLayers, B, H]; for LSTM `[h0, c0]`) before forward starts from it, else from
// zeros; `.lastState` is the final state of the last forward, the same shapes. The final state may feed the loss:
// `.lastStateGrad = dL/dlastState` before backward adds that path (dy may then be zeros); after backward,
// `.initialStateGrad` holds dL/dinitialState when an initial state was set. The state tensors belong to the layer: a
// last state stays valid while it is the last state or the initial state, and is freed once it is neither.
// Gradient contract: weight and bias gradients accumulate (or overwrite freshly zeroed grads); dx overwrites.
import { keepPreviousForward } from './graph.js';
import { currentBackend, RNN_GATES, RNN_MODE, RNN_WS } from '../backend.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { uniform } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, fmtShape, Scratch } from './util.js';

/** Options of {@link LSTM} and {@link GRU} (and, with nonlinearity, {@link RNN}). */
export interface RNNOptions {
  /** Input and output [B, T, ·] instead of [T, B, ·] (default false). */
  batchFirst?: boolean;
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** b_ih and b_hh (default true). */
  bias?: boolean;
}
/** Options of {@link RNN}. */
export interface ElmanRNNOptions extends RNNOptions {
  /** The cell's activation (default 'tanh'). */
  nonlinearity?: 'tanh' | 'relu';
}

/** An RNN's or GRU's state is one tensor [numLayers, B, H]; an LSTM's is [h, c], two of them. */
export type RecurrentState = Tensor | readonly [Tensor, Tensor];

interface LayerParams {
  wih: Parameter;
  whh: Parameter;
  bih: Parameter | null;
  bhh: Parameter | null;
}

/** What one forward left for the backward. */
interface Saved {
  T: number;
  B: number;
  unbatched: boolean;
  inputs: Tensor[]; // each layer's input, time-major [T, B, in]
  outs: Tensor[]; // each layer's output, time-major [T, B, H]
  ws: (Tensor | null)[];
  h0: (Tensor | null)[];
  c0: (Tensor | null)[];
  xShape: readonly number[];
  yShape: readonly number[];
}

abstract class RecurrentBase extends Module {
  /** Features of each input step. */
  readonly inputSize: number;
  /** H, the width of the hidden state. */
  readonly hiddenSize: number;
  /** Stacked layers; each after the first reads the one below's outputs. */
  readonly numLayers: number;
  /** Whether input and output are [B, T, ·] (else [T, B, ·]). */
  readonly batchFirst: boolean;
  /** Whether the layers have the biases b_ih and b_hh. */
  readonly bias: boolean;
  /** Set before forward: the state the sequence starts from (null: zeros). */
  initialState: RecurrentState | null = null;
  /** Set before backward: the gradient of the loss with respect to lastState (consumed by that backward). */
  lastStateGrad: RecurrentState | null = null;
  private _lastState: RecurrentState | null = null;
  private _initialStateGrad: RecurrentState | null = null;
  private ownedStates: Tensor[] = [];
  private readonly layerParams: LayerParams[] = [];
  private readonly scratch = new Scratch(this.ws);
  private saved?: Saved;

  protected constructor(
    private readonly kind: string,
    /** @internal The cell (RNN_MODE). */
    protected readonly mode: number,
    inputSize: number,
    hiddenSize: number,
    options: RNNOptions,
  ) {
    super();
    this.inputSize = checkNumber(kind, 'inputSize', inputSize, { min: 1, integer: true });
    this.hiddenSize = checkNumber(kind, 'hiddenSize', hiddenSize, { min: 1, integer: true });
    this.numLayers = checkNumber(kind, 'numLayers', options.numLayers ?? 1, { min: 1, integer: true });
    for (const key of ['batchFirst', 'bias'] as const) {
      const v = options[key];
      if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${kind}: option ${key} must be a boolean, got ${describe(v)}`);
    }
    this.batchFirst = options.batchFirst ?? false;
    this.bias = options.bias ?? true;
    const H = hiddenSize, GH = RNN_GATES[mode] * H, bound = 1 / Math.sqrt(H);
    const b = currentBackend();
    const init = (shape: number[]) =>
      new Parameter(fromHost(b, Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => (2 * uniform() - 1) * bound), shape));
    for (let l = 0; l < this.numLayers; l++) {
      const inSize = l === 0 ? inputSize : H;
      const wih = this.registerParameter(`weight_ih_l${l}`, init([GH, inSize]));
      const whh = this.registerParameter(`weight_hh_l${l}`, init([GH, H]));
      const bih = this.bias ? this.registerParameter(`bias_ih_l${l}`, init([GH])) : null;
      const bhh = this.bias ? this.registerParameter(`bias_hh_l${l}`, init([GH])) : null;
      this.layerParams.push({ wih, whh, bih, bhh });
    }
  }

  /** The layer as messages and summaries name it, e.g. `LSTM(32, 64, numLayers=2)`. */
  get label(): string {
    return `${this.kind}(${this.inputSize}, ${this.hiddenSize}${this.numLayers > 1 ? `, numLayers=${this.numLayers}` : ''})`;
  }

  /** The final state of the last forward: h [numLayers, B, H] (LSTM: [h, c]); null before the first forward. */
  get lastState(): RecurrentState | null {
    return this._lastState;
  }
  /** dL/dinitialState from the last backward (null when forward started from zeros). */
  get initialStateGrad(): RecurrentState | null {
    return this._initialStateGrad;
  }

  /** The tensors of a state (h, and c for an LSTM); none for null. */
  private stateOf(s: RecurrentState | null): readonly Tensor[] {
    return s === null ? [] : Array.isArray(s) ? s : [s as Tensor];
  }

  private get isLstm(): boolean {
    return this.mode === RNN_MODE.lstm;
  }

  /** The state tensors of `s` (h, and c for LSTM), checked against [numLayers, B, H] (unbatched: [numLayers, H]). */
  private stateParts(what: string, s: RecurrentState, B: number, unbatched: boolean, backend: Tensor['backend']): Tensor[] {
    const parts = this.isLstm ? s : [s];
    if (this.isLstm && !(Array.isArray(s) && s.length === 2))
      throw new TypeError(`${this.label}: ${what} must be [h, c] for an LSTM, got ${describe(s)}`);
    const want = unbatched ? [this.numLayers, this.hiddenSize] : [this.numLayers, B, this.hiddenSize];
    return (parts as readonly unknown[]).map((t, i) => {
      const name = this.isLstm ? `${what}[${i}] (${i === 0 ? 'h' : 'c'})` : what;
      const x = this.checkInput(t, `${this.label}: ${name}`);
      checkFloat(this.label, x, name);
      if (x.shape.length !== want.length || x.shape.some((d, k) => d !== want[k]))
        throw new RangeError(`${this.label}: ${name} must be ${fmtShape(want)}, got ${fmtShape(x.shape)}`);
      if (x.backend !== backend) throw new TypeError(`${this.label}: ${name} is on ${x.device}, the input on ${backend.name}`);
      return x;
    });
  }

  /** Layer l's [B, H] part of a state tensor [numLayers, B, H], copied into this layer's buffer `key` (null stays null). */
  private layerSlice(src: Tensor | undefined, key: string, l: number, B: number): Tensor | null {
    if (!src) return null;
    const H = this.hiddenSize;
    const t = this.scratch.get(key, src.backend, [B, H]);
    src.backend.k.copy_range(t.buf, src.buf, B * H, 0, l * B * H);
    return t;
  }

  /** Whether the layer's time-major buffers already have the output's layout (else a transpose to [B, T, ·]). */
  private timeMajorIo(unbatched: boolean, B: number, T: number): boolean {
    return !this.batchFirst || unbatched || B === 1 || T === 1;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const I = this.inputSize, H = this.hiddenSize, L = this.numLayers, mode = this.mode;
    if ((x.shape.length !== 3 && x.shape.length !== 2) || x.shape[x.shape.length - 1] !== I) {
      const form = this.batchFirst ? `[B, T, ${I}]` : `[T, B, ${I}]`;
      throw new RangeError(`${this.label}: input must be ${form} (or unbatched [T, ${I}]), got ${fmtShape(x.shape)}`);
    }
    const unbatched = x.shape.length === 2;
    const T = unbatched || !this.batchFirst ? x.shape[0] : x.shape[1];
    const B = unbatched ? 1 : this.batchFirst ? x.shape[0] : x.shape[1];
    if (T === 0 || B === 0) throw new RangeError(`${this.label}: the input has no steps or no batch rows (shape ${fmtShape(x.shape)})`);
    const b = x.backend, k = b.k;
    const init = this.initialState ? this.stateParts('initialState', this.initialState, B, unbatched, b) : null;
    const G = RNN_GATES[mode], GH = G * H;

    // time-major input
    let xt = x.reshape([T, B, I]);
    const timeMajorOut = this.timeMajorIo(unbatched, B, T);
    if (!timeMajorOut) {
      xt = this.scratch.get('xt', b, [T, B, I]);
      k.transpose01(xt.buf, x.buf, null, B, T, I);
    }
    const saved: Saved = { T, B, unbatched, inputs: [], outs: [], ws: [], h0: [], c0: [], xShape: x.shape, yShape: [] };
    const yShape = unbatched ? [T, H] : this.batchFirst ? [B, T, H] : [T, B, H];
    const stateShape = unbatched ? [L, H] : [L, B, H];
    const hLast = this.ws.get('hN', b, stateShape);
    const cLast = this.isLstm ? this.ws.get('cN', b, stateShape) : null;
    const y = this.ws.get('y', b, yShape);
    let layerIn = xt;
    for (let l = 0; l < L; l++) {
      const p = this.layerParams[l];
      const inSize = l === 0 ? I : H;
      const xproj = this.scratch.get(`xproj${l}`, b, [T, B, GH]);
      k.linear_forward(xproj.buf, layerIn.buf, p.wih.value.buf, p.bih ? p.bih.value.buf : null, T * B, inSize, GH, 0, 0);
      const h0 = this.layerSlice(init?.[0], `h0_${l}`, l, B), c0 = this.layerSlice(init?.[1], `c0_${l}`, l, B);
      const out = l === L - 1 && timeMajorOut ? y.reshape([T, B, H]) : this.scratch.get(`out${l}`, b, [T, B, H]);
      const ws = RNN_WS[mode] > 0 ? this.scratch.get(`ws${l}`, b, [T, RNN_WS[mode] * B * H]) : null;
      const hN = L === 1 ? hLast : this.scratch.get(`hN${l}`, b, [B, H]);
      const cN = cLast && (L === 1 ? cLast : this.scratch.get(`cN${l}`, b, [B, H]));
      k.rnn_forward(out.buf, hN.buf, cN ? cN.buf : null, ws ? ws.buf : null, xproj.buf, p.whh.value.buf, p.bhh ? p.bhh.value.buf : null,
        h0 ? h0.buf : null, c0 ? c0.buf : null, T, B, H, mode);
      if (L > 1) {
        k.copy_range(hLast.buf, hN.buf, B * H, l * B * H, 0);
        if (cLast && cN) k.copy_range(cLast.buf, cN.buf, B * H, l * B * H, 0);
      }
      this.scratch.release(`xproj${l}`);
      saved.inputs.push(layerIn);
      saved.outs.push(out);
      saved.ws.push(ws);
      saved.h0.push(h0);
      saved.c0.push(c0);
      layerIn = out;
    }
    if (!timeMajorOut) k.transpose01(y.buf, layerIn.buf, null, T, B, H);
    saved.yShape = y.shape;
    this.saved = saved;
    this._lastState = cLast ? [hLast, cLast] : hLast;
    if (!this.ws.reusing && keepPreviousForward()) {
      this.ownedStates = []; // the last forward's autograd node keeps its states for its backward; the GC frees them
    } else if (!this.ws.reusing) {
      // The state tensors are the layer's: one stays alive while it is the last state or the initial state (truncated
      // BPTT: each batch starts where the last one ended), and is freed once it is neither. (Inside fit they are the
      // workspace's.)
      const live = [...this.stateOf(this._lastState), ...(init ?? [])];
      for (const t of this.ownedStates) if (!live.includes(t)) t.dispose();
      this.ownedStates = this.stateOf(this._lastState).concat((init ?? []).filter((t) => this.ownedStates.includes(t)));
    }
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.saved?.yShape);
    const s = this.saved!;
    const { T, B } = s;
    const I = this.inputSize, H = this.hiddenSize, L = this.numLayers, mode = this.mode, GH = RNN_GATES[mode] * H;
    const b = dy.backend, k = b.k;
    const dState = this.lastStateGrad ? this.stateParts('lastStateGrad', this.lastStateGrad, B, s.unbatched, b) : null;
    const timeMajor = this.timeMajorIo(s.unbatched, B, T);
    let dout = dy.reshape([T, B, H]);
    if (!timeMajor) {
      dout = this.scratch.get('dyt', b, [T, B, H]);
      k.transpose01(dout.buf, dy.buf, null, B, T, H);
    }
    const withInit = s.h0[0] !== null;
    const stateShape = s.unbatched ? [L, H] : [L, B, H];
    // (initialStateGrad leaves the layer: the layer's own, never lent to a lease)
    const dh0All = withInit ? this.scratch.get('dh0', b, stateShape, 'float', false) : null;
    const dc0All = withInit && this.isLstm ? this.scratch.get('dc0', b, stateShape, 'float', false) : null;
    const dx = inputGrad ? this.ws.get('dx', b, s.xShape) : this.ws.get('none', b, [0]);
    for (let l = L - 1; l >= 0; l--) {
      const p = this.layerParams[l];
      const inSize = l === 0 ? I : H;
      const dhN = this.layerSlice(dState?.[0], 'dhN', l, B), dcN = this.layerSlice(dState?.[1], 'dcN', l, B);
      const dxproj = this.scratch.get(`dxproj${l}`, b, [T, B, GH]);
      const scratch = this.scratch.get('rnnScratch', b, [2 * B * H + (mode === RNN_MODE.gru ? T * B * GH : 0)]);
      const dh0 = withInit ? this.scratch.get('dh0l', b, [B, H]) : null;
      const dc0 = withInit && this.isLstm ? this.scratch.get('dc0l', b, [B, H]) : null;
      const { bufs: [dwih, dwhh, dbih, dbhh], accumulate } = Parameter.gradTargets([p.wih, p.whh, p.bih, p.bhh]);
      k.rnn_backward(dxproj.buf, dwhh, dbhh, dh0 ? dh0.buf : null, dc0 ? dc0.buf : null, scratch.buf, dout.buf, dhN ? dhN.buf : null,
        dcN ? dcN.buf : null, s.ws[l] ? s.ws[l]!.buf : null, s.outs[l].buf, p.whh.value.buf, s.h0[l] ? s.h0[l]!.buf : null,
        s.c0[l] ? s.c0[l]!.buf : null, T, B, H, mode, accumulate);
      if (dh0All && dh0) k.copy_range(dh0All.buf, dh0.buf, B * H, l * B * H, 0);
      if (dc0All && dc0) k.copy_range(dc0All.buf, dc0.buf, B * H, l * B * H, 0);
      const wantInput = l > 0 || inputGrad;
      let din: Tensor | null = null;
      if (wantInput) din = l === 0 && timeMajor ? dx.reshape([T, B, inSize]) : this.scratch.get(`din${l}`, b, [T, B, inSize]);
      if (din || dwih || dbih)
        k.linear_backward(din ? din.buf : null, dwih, dbih, dxproj.buf, s.inputs[l].buf, p.wih.value.buf, T * B, inSize, GH, accumulate);
      this.scratch.release(`dxproj${l}`);
      if (din) dout = din;
    }
    if (inputGrad && !timeMajor) k.transpose01(dx.buf, dout.buf, null, T, B, I);
    this._initialStateGrad = dh0All ? (dc0All ? [dh0All, dc0All] : dh0All) : null;
    this.lastStateGrad = null; // consumed
    return dx;
  }
}

/**
 * Elman RNN, as torch.nn.RNN: h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh) (nonlinearity 'relu': ReLU), over
 * input [T, B, inputSize] ([B, T, ·] with batchFirst; unbatched [T, ·]), output the last layer's h at every step.
 * Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, all U(−1/√H, 1/√H). The final state is
 * `lastState`; set `initialState` before forward to start from one.
 */
export class RNN extends RecurrentBase {
  /** The cell's activation. */
  readonly nonlinearity: 'tanh' | 'relu';
  /** inputSize → hiddenSize (integers ≥ 1); unknown option keys are a TypeError. */
  constructor(inputSize: number, hiddenSize: number, options: ElmanRNNOptions = {}) {
    checkOptions('RNN', options, ['batchFirst', 'numLayers', 'bias', 'nonlinearity']);
    const nl = options.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu') throw new RangeError(`RNN: nonlinearity must be 'tanh' or 'relu', got ${describe(nl)}`);
    super('RNN', nl === 'tanh' ? RNN_MODE.tanh : RNN_MODE.relu, inputSize, hiddenSize, options);
    this.nonlinearity = nl;
  }
}

/**
 * LSTM, as torch.nn.LSTM: gates i, f, g, o (PyTorch's order in the weights); c_t = f·c_{t−1} + i·g, h_t = o·tanh(c_t).
 * Shapes, parameter names and initialisation as {@link RNN}'s; the state is [h, c], each [numLayers, B, H].
 */
export class LSTM extends RecurrentBase {
  /** inputSize → hiddenSize (integers ≥ 1); unknown option keys are a TypeError. */
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    checkOptions('LSTM', options, ['batchFirst', 'numLayers', 'bias']);
    super('LSTM', RNN_MODE.lstm, inputSize, hiddenSize, options);
  }
}

/**
 * GRU, as torch.nn.GRU: gates r, z, n; n = tanh(x_n + r·(W_hn·h + b_hn)), h_t = (1 − z)·n + z·h_{t−1}. Shapes,
 * parameter names and initialisation as {@link RNN}'s; the state is one tensor [numLayers, B, H].
 */
export class GRU extends RecurrentBase {
  /** inputSize → hiddenSize (integers ≥ 1); unknown option keys are a TypeError. */
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    checkOptions('GRU', options, ['batchFirst', 'numLayers', 'bias']);
    super('GRU', RNN_MODE.gru, inputSize, hiddenSize, options);
  }
}
