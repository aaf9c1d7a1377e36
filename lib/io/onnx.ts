// ONNX export: a model built from retrograd's layers (Sequential, nested or not) written as an ONNX file (opset 18,
// IR version 8) that onnxruntime, TensorRT, OpenVINO or PyTorch's onnx2torch can run. The model is exported in eval
// mode (Dropout is the identity, BatchNorm uses its running statistics). Each layer becomes the ONNX operators of
// the same computation, its weights initializers named by their state-dict keys; the shapes between layers come
// from running the model once on zeros of `inputShape`, so every Reshape and Resize is exact. The first dimension is
// the batch and stays symbolic ("batch") unless `dynamicBatch: false`.
import { writeFile } from 'node:fs/promises';
import { describe, RetrogradError } from '../errors.js';
import { GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from '../nn/activation.js';
import { MultiheadAttention, PositionalEmbedding, TransformerBlock } from '../nn/attention.js';
import { BatchNorm1d, BatchNorm2d } from '../nn/batchnorm.js';
import { Conv1d, Conv2d, ConvTranspose2d } from '../nn/conv.js';
import { Embedding } from '../nn/embedding.js';
import { LayerNorm } from '../nn/layernorm.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { GroupNorm } from '../nn/normalization.js';
import { AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d } from '../nn/pool.js';
import { GRU, LSTM, RNN } from '../nn/rnn.js';
import { Upsample } from '../nn/sampling.js';
import { Sequential } from '../nn/sequential.js';
import { Dropout, Dropout2d, Flatten, Identity } from '../nn/shape.js';
import { noGrad, zeros } from '../autograd/index.js';
import type { Tensor } from '../tensor.js';
import { ATTR, encodeModel, ONNX_FLOAT, ONNX_INT32, ONNX_INT64 } from './onnx-proto.js';

/** Options of {@link exportOnnx} and {@link toOnnx}. */
export interface ExportOnnxOptions {
  /** The input's shape with its batch dimension first, e.g. [1, 1, 28, 28] (required). */
  inputShape: readonly number[];
  /** The input's element type: 'int32' for models that start with an Embedding (default: that, else 'float32'). */
  inputDtype?: 'float32' | 'int32';
  /** Keep the batch dimension symbolic (default true); false fixes it at inputShape[0]. */
  dynamicBatch?: boolean;
  /** The name of the graph's input (default 'input'). */
  inputName?: string;
  /** The name of the graph's output (default 'output'). */
  outputName?: string;
}

/** The ONNX operator set the exporter writes (LayerNormalization needs ≥ 17, Resize with axes ≥ 18). */
export const ONNX_OPSET = 18;

type Attr = { name: string; type: number; f?: number; i?: number; s?: Uint8Array; floats?: number[]; ints?: number[]; strings?: Uint8Array[] };
const A = {
  f: (name: string, f: number): Attr => ({ name, type: ATTR.FLOAT, f }),
  i: (name: string, i: number): Attr => ({ name, type: ATTR.INT, i }),
  s: (name: string, s: string): Attr => ({ name, type: ATTR.STRING, s: new TextEncoder().encode(s) }),
  ints: (name: string, ints: readonly number[]): Attr => ({ name, type: ATTR.INTS, ints: [...ints] }),
  strings: (name: string, strings: readonly string[]): Attr => ({ name, type: ATTR.STRINGS, strings: strings.map((v) => new TextEncoder().encode(v)) }),
};

/** The graph under construction: nodes in order, initializers, unique names. */
class Graph {
  readonly nodes: object[] = [];
  readonly initializers: object[] = [];
  private readonly used = new Set<string>();

  unique(base: string): string {
    let name = base, k = 1;
    while (this.used.has(name)) name = `${base}_${k++}`;
    this.used.add(name);
    return name;
  }
  /** A float32 initializer of `dims` (its name the state-dict key where it has one). */
  floats(name: string, data: Float32Array, dims: readonly number[]): string {
    const n = this.unique(name);
    this.initializers.push({ name: n, data_type: ONNX_FLOAT, dims: [...dims], raw_data: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
    return n;
  }
  /** An int64 initializer (shapes, axes, sizes). */
  int64(name: string, values: readonly number[]): string {
    const n = this.unique(name);
    this.initializers.push({ name: n, data_type: ONNX_INT64, dims: [values.length], int64_data: [...values] });
    return n;
  }
  /** One node; returns its outputs' names. */
  node(op: string, inputs: string[], attrs: Attr[] = [], outputs = 1, label = op): string[] {
    const outs = Array.from({ length: outputs }, (_, k) => this.unique(`${label}${outputs > 1 ? `_${k}` : ''}`));
    this.nodes.push({ op_type: op, name: this.unique(`${label}_node`), input: inputs, output: outs, attribute: attrs });
    return outs;
  }
  one(op: string, inputs: string[], attrs: Attr[] = [], label = op): string {
    return this.node(op, inputs, attrs, 1, label)[0];
  }
}

/** A layer's float32 weights, host side. */
function host(t: Tensor): Float32Array {
  const a = t.toArray('float32');
  return a instanceof Float32Array ? a : Float32Array.from(a);
}
/** [R, C] row-major → [C, R]. */
function transposed(a: Float32Array, R: number, C: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = a[r * C + c];
  return out;
}
/** Row blocks of `a` (each `rows` × `cols`) in the order `order` (gate reordering between PyTorch and ONNX). */
function reorderBlocks(a: Float32Array, blocks: number, order: readonly number[]): Float32Array {
  const size = a.length / blocks, out = new Float32Array(a.length);
  order.forEach((from, to) => out.set(a.subarray(from * size, (from + 1) * size), to * size));
  return out;
}

interface Step {
  g: Graph;
  /** The layer's input name and its shape (batch included, from the run on zeros). */
  x: string;
  inShape: readonly number[];
  outShape: readonly number[];
  /** The layer's state-dict prefix in the model ('' at the top, '0.' for a Sequential's first layer). */
  prefix: string;
}

const unsupported = (layer: Module, why: string) =>
  new RetrogradError(`exportOnnx: ${layer.constructor.name} ${why}`, 'INVALID_ARGUMENT');

/** x @ Wᵀ + b for Linear's weight [out, in] on an input of any rank (Gemm on matrices). */
function linear(g: Graph, x: string, rank: number, w: Tensor, b: Tensor | null, key: string): string {
  const [O, I] = w.shape;
  if (rank === 2) {
    const inputs = [x, g.floats(`${key}weight`, host(w), [O, I])];
    if (b) inputs.push(g.floats(`${key}bias`, host(b), [O]));
    return g.one('Gemm', inputs, [A.i('transB', 1)], `${key}Gemm`);
  }
  const y = g.one('MatMul', [x, g.floats(`${key}weight_T`, transposed(host(w), O, I), [I, O])], [], `${key}MatMul`);
  return b ? g.one('Add', [y, g.floats(`${key}bias`, host(b), [O])], [], `${key}Add`) : y;
}

function layerNorm(g: Graph, x: string, E: readonly number[], eps: number, w: Tensor | null, b: Tensor | null, key: string): string {
  const n = E.reduce((p, d) => p * d, 1);
  const scale = g.floats(`${key}weight`, w ? host(w) : new Float32Array(n).fill(1), E);
  const bias = g.floats(`${key}bias`, b ? host(b) : new Float32Array(n), E);
  return g.one('LayerNormalization', [x, scale, bias], [A.i('axis', -E.length), A.f('epsilon', eps)], `${key}LayerNormalization`);
}

/** Self-attention on x [B, S, E] (batch first): PyTorch's in-projection, scaled dot products, out-projection. */
function selfAttention(g: Graph, x: string, S: number, m: MultiheadAttention, key: string): string {
  const E = m.embedDim, h = m.numHeads, d = E / h;
  const qkv = linear(g, x, 3, m.inProjWeight.value, m.inProjBias?.value ?? null, `${key}in_proj_`);
  const [q, k, v] = g.node('Split', [qkv, g.int64(`${key}split`, [E, E, E])], [A.i('axis', -1)], 3, `${key}qkv`);
  const heads = (t: string, perm: number[]) =>
    g.one('Transpose', [g.one('Reshape', [t, g.int64(`${key}heads_shape`, [0, 0, h, d])], [], `${key}Reshape`)], [A.ints('perm', perm)], `${key}Transpose`);
  const scores = g.one('Mul', [g.one('MatMul', [heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])], [], `${key}scores`), g.floats(`${key}scale`, Float32Array.of(1 / Math.sqrt(d)), [])], [], `${key}scaled`);
  let logits = scores;
  if (m.causal) {
    const mask = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) mask[i * S + j] = -Infinity;
    logits = g.one('Add', [scores, g.floats(`${key}causal_mask`, mask, [S, S])], [], `${key}masked`);
  }
  const weights = g.one('Softmax', [logits], [A.i('axis', -1)], `${key}weights`);
  const ctx = g.one('MatMul', [weights, heads(v, [0, 2, 1, 3])], [], `${key}context`);
  const merged = g.one('Reshape', [g.one('Transpose', [ctx], [A.ints('perm', [0, 2, 1, 3])], `${key}Transpose`), g.int64(`${key}merge_shape`, [0, 0, E])], [], `${key}merged`);
  return linear(g, merged, 3, m.outProj.weight.value, m.outProj.bias?.value ?? null, `${key}out_proj.`);
}

/** The recurrent stack on x [T, B, I] (time major) → [T, B, H]: ONNX's RNN/LSTM/GRU, one node per layer. */
function recurrent(g: Graph, x: string, m: RNN | LSTM | GRU, key: string): string {
  const H = m.hiddenSize;
  const sd = m.stateDict();
  // PyTorch's gate blocks → ONNX's: LSTM (i, f, g, o) → (i, o, f, c); GRU (r, z, n) → (z, r, h)
  const { op, gates, order, attrs } = m instanceof LSTM ? { op: 'LSTM', gates: 4, order: [0, 3, 1, 2], attrs: [] }
    : m instanceof GRU ? { op: 'GRU', gates: 3, order: [1, 0, 2], attrs: [A.i('linear_before_reset', 1)] }
    : { op: 'RNN', gates: 1, order: [0], attrs: [A.strings('activations', [m.nonlinearity === 'relu' ? 'Relu' : 'Tanh'])] };
  let y = x;
  for (let l = 0; l < m.numLayers; l++) {
    const wih = sd[`weight_ih_l${l}`], whh = sd[`weight_hh_l${l}`];
    const I = wih.shape[1];
    const W = g.floats(`${key}weight_ih_l${l}`, reorderBlocks(host(wih), gates, order), [1, gates * H, I]);
    const R = g.floats(`${key}weight_hh_l${l}`, reorderBlocks(host(whh), gates, order), [1, gates * H, H]);
    const inputs = [y, W, R];
    if (m.bias) {
      const b = new Float32Array(2 * gates * H);
      b.set(reorderBlocks(host(sd[`bias_ih_l${l}`]), gates, order), 0);
      b.set(reorderBlocks(host(sd[`bias_hh_l${l}`]), gates, order), gates * H);
      inputs.push(g.floats(`${key}bias_l${l}`, b, [1, 2 * gates * H]));
    }
    const seq = g.one(op, inputs, [A.i('hidden_size', H), ...attrs], `${key}${op}_l${l}`);
    y = g.one('Squeeze', [seq, g.int64(`${key}squeeze_axes`, [1])], [], `${key}Squeeze`); // [T, 1, B, H] → [T, B, H]
  }
  return y;
}

/** One layer's ONNX nodes; returns the name of its output. */
function emit(layer: Module, s: Step): string {
  const { g, x, inShape, outShape, prefix: key } = s;
  const sd = () => layer.stateDict();
  if (layer instanceof Linear) return linear(g, x, inShape.length, layer.weight.value, layer.bias?.value ?? null, key);
  if (layer instanceof ReLU) return g.one('Relu', [x], [], `${key}Relu`);
  if (layer instanceof LeakyReLU) return g.one('LeakyRelu', [x], [A.f('alpha', layer.negativeSlope)], `${key}LeakyRelu`);
  if (layer instanceof Sigmoid) return g.one('Sigmoid', [x], [], `${key}Sigmoid`);
  if (layer instanceof Tanh) return g.one('Tanh', [x], [], `${key}Tanh`);
  if (layer instanceof GELU) {
    // exact GELU: x · (1 + erf(x / √2)) / 2 (Gelu is an operator only from opset 20)
    const e = g.one('Erf', [g.one('Mul', [x, g.floats(`${key}inv_sqrt2`, Float32Array.of(Math.SQRT1_2), [])], [], `${key}scaled`)], [], `${key}Erf`);
    const one = g.one('Add', [e, g.floats(`${key}one`, Float32Array.of(1), [])], [], `${key}plus1`);
    return g.one('Mul', [g.one('Mul', [x, one], [], `${key}times`), g.floats(`${key}half`, Float32Array.of(0.5), [])], [], `${key}Gelu`);
  }
  if (layer instanceof Softmax) return g.one('Softmax', [x], [A.i('axis', -1)], `${key}Softmax`);
  if (layer instanceof Flatten) return g.one('Flatten', [x], [A.i('axis', 1)], `${key}Flatten`);
  if (layer instanceof Dropout || layer instanceof Dropout2d || layer instanceof Identity) return g.one('Identity', [x], [], `${key}Identity`);
  if (layer instanceof Conv2d || layer instanceof Conv1d) {
    const w = layer.weight.value;
    const inputs = [x, g.floats(`${key}weight`, host(w), w.shape)];
    if (layer.bias) inputs.push(g.floats(`${key}bias`, host(layer.bias.value), layer.bias.value.shape));
    const list = (v: number | readonly number[]) => (typeof v === 'number' ? [v] : [...v]);
    const k = list(layer.kernelSize), st = list(layer.stride), p = list(layer.padding), dil = list(layer.dilation);
    return g.one('Conv', inputs, [A.ints('kernel_shape', k), A.ints('strides', st), A.ints('pads', [...p, ...p]), A.ints('dilations', dil), A.i('group', 1)], `${key}Conv`);
  }
  if (layer instanceof ConvTranspose2d) {
    const w = layer.weight.value;
    const inputs = [x, g.floats(`${key}weight`, host(w), w.shape)];
    if (layer.bias) inputs.push(g.floats(`${key}bias`, host(layer.bias.value), layer.bias.value.shape));
    const p = [...layer.padding];
    return g.one('ConvTranspose', inputs, [
      A.ints('kernel_shape', [...layer.kernelSize]), A.ints('strides', [...layer.stride]), A.ints('pads', [...p, ...p]),
      A.ints('output_padding', [...layer.outputPadding]), A.ints('dilations', [...layer.dilation]), A.i('group', 1),
    ], `${key}ConvTranspose`);
  }
  if (layer instanceof MaxPool2d || layer instanceof AvgPool2d) {
    const p = [...layer.padding];
    const attrs = [A.ints('kernel_shape', [...layer.kernelSize]), A.ints('strides', [...layer.stride]), A.ints('pads', [...p, ...p])];
    if (layer instanceof AvgPool2d) return g.one('AveragePool', [x], [...attrs, A.i('count_include_pad', layer.countIncludePad ? 1 : 0)], `${key}AveragePool`);
    return g.one('MaxPool', [x], attrs, `${key}MaxPool`);
  }
  if (layer instanceof GlobalAvgPool2d || layer instanceof AdaptiveAvgPool2d) {
    const y = g.one('GlobalAveragePool', [x], [], `${key}GlobalAveragePool`);
    return outShape.length === 2 ? g.one('Flatten', [y], [A.i('axis', 1)], `${key}Flatten`) : y;
  }
  if (layer instanceof BatchNorm1d || layer instanceof BatchNorm2d) {
    if (!layer.trackRunningStats) throw unsupported(layer, 'without running statistics normalises by the batch even in eval mode, which ONNX\'s BatchNormalization cannot express');
    const C = layer.numFeatures, state = sd();
    const scale = g.floats(`${key}weight`, layer.affine ? host(state.weight) : new Float32Array(C).fill(1), [C]);
    const bias = g.floats(`${key}bias`, layer.affine ? host(state.bias) : new Float32Array(C), [C]);
    const mean = g.floats(`${key}running_mean`, host(state.running_mean), [C]), variance = g.floats(`${key}running_var`, host(state.running_var), [C]);
    return g.one('BatchNormalization', [x, scale, bias, mean, variance], [A.f('epsilon', layer.eps)], `${key}BatchNormalization`);
  }
  if (layer instanceof LayerNorm) {
    const state = sd();
    return layerNorm(g, x, layer.normalizedShape, layer.eps, state.weight ?? null, state.bias ?? null, key);
  }
  if (layer instanceof GroupNorm) {
    // [N, C, …] → [N, G, −1], normalised per (sample, group) by InstanceNormalization, back to [N, C, …], then γ, β per channel
    const G = layer.numGroups, C = layer.numChannels, state = sd();
    const grouped = g.one('Reshape', [x, g.int64(`${key}group_shape`, [0, G, -1])], [], `${key}grouped`);
    const normed = g.one('InstanceNormalization', [grouped, g.floats(`${key}ones`, new Float32Array(G).fill(1), [G]), g.floats(`${key}zeros`, new Float32Array(G), [G])], [A.f('epsilon', layer.eps)], `${key}InstanceNormalization`);
    let y = g.one('Reshape', [normed, g.int64(`${key}shape`, [0, ...inShape.slice(1)])], [], `${key}ungrouped`);
    if (layer.affine) {
      const perChannel = [C, ...inShape.slice(2).map(() => 1)];
      y = g.one('Add', [g.one('Mul', [y, g.floats(`${key}weight`, host(state.weight), perChannel)], [], `${key}scaled`), g.floats(`${key}bias`, host(state.bias), perChannel)], [], `${key}GroupNorm`);
    }
    return y;
  }
  if (layer instanceof Embedding) return g.one('Gather', [g.floats(`${key}weight`, host(layer.weight.value), layer.weight.value.shape), x], [A.i('axis', 0)], `${key}Gather`);
  if (layer instanceof Upsample) {
    const nearest = layer.mode === 'nearest';
    const spatial = outShape.slice(2);
    const mode = nearest ? [A.s('mode', 'nearest'), A.s('coordinate_transformation_mode', 'asymmetric'), A.s('nearest_mode', 'floor')]
      : [A.s('mode', 'linear'), A.s('coordinate_transformation_mode', layer.alignCorners ? 'align_corners' : 'pytorch_half_pixel')];
    const axes = spatial.map((_, k) => k + 2);
    return g.one('Resize', [x, '', '', g.int64(`${key}sizes`, spatial)], [...mode, A.ints('axes', axes)], `${key}Resize`);
  }
  if (layer instanceof RNN || layer instanceof LSTM || layer instanceof GRU) {
    if (inShape.length !== 3) throw unsupported(layer, `exports batched input only ([B, T, I] or [T, B, I]), got inputShape [${inShape.join(', ')}]`);
    const timeMajor = layer.batchFirst ? g.one('Transpose', [x], [A.ints('perm', [1, 0, 2])], `${key}time_major`) : x;
    const y = recurrent(g, timeMajor, layer, key);
    return layer.batchFirst ? g.one('Transpose', [y], [A.ints('perm', [1, 0, 2])], `${key}batch_first`) : y;
  }
  if (layer instanceof PositionalEmbedding) {
    const T = inShape[inShape.length - 2], E = layer.embeddingDim;
    const table = host(layer.weight.value).slice(0, T * E);
    return g.one('Add', [x, g.floats(`${key}weight`, table, [T, E])], [], `${key}positions`);
  }
  if (layer instanceof MultiheadAttention) {
    if (inShape.length !== 3) throw unsupported(layer, `exports batched input only, got inputShape [${inShape.join(', ')}]`);
    const bf = layer.batchFirst;
    const xb = bf ? x : g.one('Transpose', [x], [A.ints('perm', [1, 0, 2])], `${key}batch_first`);
    const y = selfAttention(g, xb, bf ? inShape[1] : inShape[0], layer, key);
    return bf ? y : g.one('Transpose', [y], [A.ints('perm', [1, 0, 2])], `${key}seq_first`);
  }
  if (layer instanceof TransformerBlock) {
    // pre-norm: x + attn(ln1(x)), then + mlp(ln2(·))
    const S = inShape[1], st = sd();
    const a = selfAttention(g, layerNorm(g, x, [layer.embedDim], layer.eps, st['ln1.weight'], st['ln1.bias'], `${key}ln1.`), S, layer.attn, `${key}attn.`);
    const h = g.one('Add', [x, a], [], `${key}residual1`);
    const m0 = linear(g, layerNorm(g, h, [layer.embedDim], layer.eps, st['ln2.weight'], st['ln2.bias'], `${key}ln2.`), 3, st['mlp.0.weight'], st['mlp.0.bias'], `${key}mlp.0.`);
    const act = emit(layer.mlp.layers[1], { g, x: m0, inShape, outShape, prefix: `${key}mlp.1.` });
    return g.one('Add', [h, linear(g, act, 3, st['mlp.2.weight'], st['mlp.2.bias'], `${key}mlp.2.`)], [], `${key}residual2`);
  }
  throw unsupported(layer, 'has no ONNX export (exportable: Sequential of Linear, Conv1d/2d, ConvTranspose2d, pooling, BatchNorm, LayerNorm, GroupNorm, activations, Dropout, Flatten, Identity, Embedding, Upsample, RNN/LSTM/GRU, MultiheadAttention (self-attention), TransformerBlock, PositionalEmbedding)');
}

/** The leaf layers of a model in the order they run, with their state-dict prefixes. */
function leaves(m: Module, prefix = ''): [Module, string][] {
  if (m instanceof Sequential) return m.layers.flatMap((l, i) => leaves(l, `${prefix}${i}.`));
  return [[m, prefix]];
}

/** The ONNX bytes of `model` (see exportOnnx). */
export function toOnnx(model: Module, options: ExportOnnxOptions): Uint8Array {
  if (!(model instanceof Module)) throw new TypeError(`exportOnnx: model must be a retrograd Module, got ${describe(model)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`exportOnnx: options must be an object with inputShape, got ${describe(options)}`);
  const { inputShape, dynamicBatch = true, inputName = 'input', outputName = 'output' } = options;
  if (!Array.isArray(inputShape) || inputShape.length < 1 || !inputShape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new TypeError(`exportOnnx: inputShape must be the input's shape with the batch first, e.g. [1, 784], got ${describe(inputShape)}`);
  const layers = leaves(model);
  const inputDtype = options.inputDtype ?? (layers[0][0] instanceof Embedding ? 'int32' : 'float32');
  if (inputDtype !== 'float32' && inputDtype !== 'int32') throw new TypeError(`exportOnnx: inputDtype must be 'float32' or 'int32', got ${describe(inputDtype)}`);
  const g = new Graph();
  g.unique(inputName);
  const wasTraining = model.training;
  model.eval();
  let name = inputName, shape: readonly number[] = inputShape;
  try {
    noGrad(() => {
      let value = zeros(inputShape, { dtype: inputDtype });
      for (const [layer, prefix] of layers) {
        const out = layer.forward(value);
        name = emit(layer, { g, x: name, inShape: shape, outShape: out.shape, prefix });
        shape = out.shape;
        value = out;
      }
    });
  } finally {
    if (wasTraining) model.train();
  }
  const last = g.nodes[g.nodes.length - 1] as { output: string[] } | undefined;
  if (last && last.output[0] === name) last.output[0] = outputName;
  else g.one('Identity', [name], [], outputName);
  const dims = (s: readonly number[]) => ({ dim: s.map((d, k) => (k === 0 && dynamicBatch ? { dim_param: 'batch' } : { dim_value: d })) });
  const value = (n: string, s: readonly number[], type: number) => ({ name: n, type: { tensor_type: { elem_type: type, shape: dims(s) } } });
  return encodeModel({
    ir_version: 8,
    producer_name: 'retrograd',
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: model.constructor.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [value(inputName, inputShape, inputDtype === 'int32' ? ONNX_INT32 : ONNX_FLOAT)],
      output: [value(outputName, shape, ONNX_FLOAT)],
    },
  });
}

/**
 * Writes `model` as an ONNX file (opset 18) that onnxruntime and other ONNX runtimes run: a Sequential (nested or
 * not) of Linear, Conv1d/Conv2d, ConvTranspose2d, MaxPool2d/AvgPool2d/GlobalAvgPool2d/AdaptiveAvgPool2d, BatchNorm,
 * LayerNorm, GroupNorm, activations, Dropout (exported as the identity: eval mode), Flatten, Identity, Embedding,
 * Upsample, RNN/LSTM/GRU, MultiheadAttention (self-attention), TransformerBlock and PositionalEmbedding. A layer
 * without an ONNX form is an error naming it. `inputShape` (batch first) fixes every shape but the batch.
 */
export async function exportOnnx(model: Module, path: string, options: ExportOnnxOptions): Promise<void> {
  const bytes = toOnnx(model, options);
  await writeFile(path, bytes);
}
