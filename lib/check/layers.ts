// The layer check: the layers that are built from several kernels or from tensor operations — transposed and 1-d
// convolution, interpolation, group normalisation, channel dropout, attention in its general form (cross-attention,
// masks, returned weights), the transformer's encoder and decoder layers, incremental decoding through the key/value
// cache, LoRA adapters — run forward and backward on a backend and on the reference, from the same random inputs and
// weights with awkward sizes; the outputs and every gradient must agree (TOL.reduction, normwise and per element).
// `retrograd check [backend]` runs it after the kernel check; test/layers-check.test.ts under vitest.
import { backendByName, currentBackend, type Backend } from '../backend.js';
import '../backends/index.js';
import { mulberry32 } from '../data/split.js';
import * as rg from '../index.js';
import { fromHost, type Tensor } from '../tensor.js';
import { compare, describeComparison, randomArray, TOL } from './numerics.js';

/** One case: builds its module (or none) and computes its output from the inputs; the check adds a weighted sum. */
export interface LayerCase {
  name: string;
  /** Input shapes; an entry `{ int: n }` is an int32 input of values in [0, n). */
  inputs: (number[] | { shape: number[]; int: number })[];
  make?: () => rg.Module;
  run: (m: rg.Module | undefined, ...xs: Tensor[]) => Tensor;
  /** Inputs that get no gradient (masks, token ids). */
  noGrad?: number[];
}

const int = (shape: number[], n: number) => ({ shape, int: n });
const mha = (m: rg.Module | undefined) => m as rg.MultiheadAttention;

export const LAYER_CASES: LayerCase[] = [
  { name: 'ConvTranspose2d stride 2, padding, output padding', inputs: [[3, 5, 7, 6]], make: () => new rg.ConvTranspose2d(5, 4, [4, 3], { stride: 2, padding: 1, outputPadding: 1 }), run: (m, x) => m!.forward(x) },
  { name: 'ConvTranspose2d dilation 2, no bias', inputs: [[2, 3, 5, 5]], make: () => new rg.ConvTranspose2d(3, 2, 3, { dilation: 2, bias: false }), run: (m, x) => m!.forward(x) },
  { name: 'ConvTranspose2d 1×1 input to 7×7 (DCGAN)', inputs: [[4, 16, 1, 1]], make: () => new rg.ConvTranspose2d(16, 8, 7, { bias: false }), run: (m, x) => m!.forward(x) },
  { name: 'Conv1d stride 2, padding, dilation', inputs: [[3, 4, 17]], make: () => new rg.Conv1d(4, 5, 3, { stride: 2, padding: 2, dilation: 2 }), run: (m, x) => m!.forward(x) },
  { name: 'interpolate nearest, size 7×5', inputs: [[2, 3, 4, 3]], run: (_, x) => rg.F.interpolate(x, { size: [7, 5] }) },
  { name: 'interpolate bilinear ×2', inputs: [[2, 3, 5, 4]], run: (_, x) => rg.F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }) },
  { name: 'interpolate bilinear, align corners, 9×2', inputs: [[1, 2, 4, 5]], run: (_, x) => rg.F.interpolate(x, { size: [9, 2], mode: 'bilinear', alignCorners: true }) },
  { name: 'GroupNorm 3 groups of 2 channels', inputs: [[3, 6, 5, 3]], make: () => new rg.GroupNorm(3, 6), run: (m, x) => m!.forward(x) },
  { name: 'Dropout2d p 0.4 (the same mask)', inputs: [[4, 7, 3, 3]], make: () => new rg.Dropout2d(0.4), run: (m, x) => { rg.manualSeed(5); return m!.forward(x); } },
  {
    name: 'MultiheadAttention cross-attention, key padding mask, weights per head', inputs: [[3, 5, 12], [3, 7, 12], { shape: [3, 7], int: 1 }], noGrad: [2],
    make: () => new rg.MultiheadAttention(12, 3), run: (m, q, kv, pad) => {
      const [out, w] = mha(m).forward(q, kv, kv, { keyPaddingMask: pad, needWeights: true, averageAttnWeights: false });
      return rg.cat([out.reshape([-1]), w!.reshape([-1])]);
    },
  },
  {
    name: 'MultiheadAttention self-attention, float mask, [L, B, E]', inputs: [[6, 2, 8], [6, 6]], noGrad: [1],
    make: () => new rg.MultiheadAttention(8, 2, { batchFirst: false }), run: (m, x, mask) => mha(m).forward(x, x, x, { attnMask: mask.mul(2), needWeights: false })[0],
  },
  {
    name: 'TransformerEncoderLayer post-norm, relu, padding', inputs: [[2, 6, 8], { shape: [2, 6], int: 1 }], noGrad: [1],
    make: () => new rg.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0, batchFirst: true }),
    run: (m, x, pad) => (m as rg.TransformerEncoderLayer).forward(x, { srcKeyPaddingMask: pad }),
  },
  {
    name: 'TransformerDecoderLayer pre-norm, gelu, causal', inputs: [[2, 5, 8], [2, 4, 8]],
    make: () => new rg.TransformerDecoderLayer(8, 4, { dimFeedforward: 12, dropout: 0, batchFirst: true, normFirst: true, activation: 'gelu' }),
    run: (m, t, mem) => (m as rg.TransformerDecoderLayer).forward(t, mem, { tgtMask: rg.Transformer.generateSquareSubsequentMask(5) }),
  },
  {
    name: 'TransformerDecoderLayer through the key/value cache (no gradient)', inputs: [[2, 4, 8], [2, 3, 8]], noGrad: [0, 1],
    make: () => new rg.TransformerDecoderLayer(8, 2, { dimFeedforward: 12, dropout: 0, batchFirst: true }),
    run: (m, t, mem) => rg.noGrad(() => {
      const cache = new rg.KVCache(), steps: Tensor[] = [];
      for (let i = 0; i < 4; i++) steps.push((m as rg.TransformerDecoderLayer).forward(t.narrow(1, i, 1), mem, { cache }));
      cache.reset();
      return rg.cat(steps, 1);
    }),
  },
  {
    name: 'LoRA on a transformer block', inputs: [[2, 5, 8]],
    make: () => {
      const block = new rg.TransformerBlock(8, 2, { causal: true, mlpRatio: 2 });
      for (const a of rg.addLoRA(block, { rank: 2 }).adapters.values()) a.B.value.assign(randomArray(a.B.value.size, mulberry32(3), 0.3));
      return block;
    },
    run: (m, x) => m!.forward(x),
  },
];

export interface LayerCheckResult {
  name: string;
  ok: boolean;
  /** What differs (the first output or gradient that does), or what threw. */
  message?: string;
  /** The largest normwise error over the output and the gradients. */
  error: number;
}

/** Runs a case on backend b from `seed`: the output, then the gradients of a weighted sum of it. */
function runCase(c: LayerCase, b: Backend, seed: number): { name: string; values: Float32Array }[] {
  const r = mulberry32(seed);
  rg.manualSeed(seed);
  const m = c.make?.();
  // the module's weights (made on b, the current backend): the same random values on both backends
  if (m) for (const t of Object.values(m.stateDict())) if (t.dtype === 'float32') t.assign(randomArray(t.size, r, 0.5));
  const xs = c.inputs.map((spec, i) => {
    const shape = Array.isArray(spec) ? spec : spec.shape, n = shape.reduce((a, d) => a * d, 1);
    const t = Array.isArray(spec)
      ? fromHost(b, randomArray(n, r), shape)
      : fromHost(b, Int32Array.from({ length: n }, (_, j) => (spec.int === 1 ? Number(j % 5 === 4) : Math.floor(r() * spec.int))), shape);
    if (Array.isArray(spec) && !c.noGrad?.includes(i)) t.requiresGrad_();
    return t;
  });
  const y = c.run(m, ...xs);
  const out = [{ name: 'output', values: Float32Array.from(y.toArray()) }];
  if (!y.requiresGrad) return out;
  y.mul(fromHost(b, randomArray(y.size, r), y.shape)).sum().backward();
  xs.forEach((x, i) => x.requiresGrad && out.push({ name: `gradient of input ${i}`, values: Float32Array.from(x.grad!.toArray()) }));
  for (const [k, p] of m?.namedParameters() ?? []) if (p.requiresGrad) out.push({ name: `gradient of ${k}`, values: Float32Array.from(p.grad.toArray()) });
  return out;
}

/** Every layer case on `backend` against the reference backend. */
export function checkLayers(backend: Backend | string, options: { seed?: number; cases?: readonly LayerCase[] } = {}): LayerCheckResult[] {
  const b = typeof backend === 'string' ? backendByName(backend) : backend;
  const ref = backendByName('reference');
  const seed = options.seed ?? 1;
  const previous = currentBackend().name as 'cpu';
  try {
    return (options.cases ?? LAYER_CASES).map((c, i) => {
      try {
        rg.setBackend('reference');
        const want = runCase(c, ref, seed + i);
        rg.setBackend(b.name as 'cpu');
        const got = runCase(c, b, seed + i);
        let error = 0;
        for (const [j, w] of want.entries()) {
          const g = got[j];
          if (!g || g.name !== w.name) return { name: c.name, ok: false, error: Infinity, message: `${w.name}: missing on '${b.name}'` };
          const cmp = compare(g.values, w.values, TOL.reduction);
          error = Math.max(error, cmp.error);
          if (!cmp.ok) return { name: c.name, ok: false, error, message: `${w.name}: ${describeComparison(cmp, g.values, w.values)}` };
        }
        return { name: c.name, ok: true, error };
      } catch (e) {
        return { name: c.name, ok: false, error: Infinity, message: `threw: ${e instanceof Error ? e.message : String(e)}` };
      }
    });
  } finally {
    rg.setBackend(previous);
  }
}
