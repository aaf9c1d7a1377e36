// Every differentiable tensor operation's gradient against central finite differences, in float64 on the reference
// backend: broadcasting, keepdim, negative dims, size-1 dimensions and batches included. Each check weighs the output
// with fixed random weights, so every output element's gradient is checked, not only their sum.
import { describe, expect, it } from 'vitest';
import * as rg from '../lib/index.js';
import { reference64Backend } from '../lib/backends/reference/index.js';
import { fromHost, type Tensor } from '../lib/tensor.js';
import { rng } from './helpers.js';

type Spec = number[] | { shape: number[]; positive?: boolean; away?: boolean; int?: number; noGrad?: boolean };
const b64 = reference64Backend;

function data(spec: Spec, r: () => number): Float64Array | Int32Array {
  const s = Array.isArray(spec) ? { shape: spec } : spec;
  const n = s.shape.reduce((p, d) => p * d, 1);
  if (s.int !== undefined) return Int32Array.from({ length: n }, () => Math.floor(r() * s.int!));
  return Float64Array.from({ length: n }, () => {
    const v = 2 * r() - 1;
    if (s.positive) return 0.3 + 1.5 * r();
    // away from 0 (where relu, abs, sign and friends have no derivative)
    return s.away ? Math.sign(v) * (0.2 + Math.abs(v)) : v * 1.5;
  });
}
function shapeOf(spec: Spec): number[] {
  return Array.isArray(spec) ? spec : spec.shape;
}

/** max |analytic − numeric| / max(1, |numeric|) over every input element. */
function gradcheck(f: (...xs: Tensor[]) => Tensor, specs: Spec[], seed = 1): number {
  const r = rng(seed);
  const values = specs.map((s) => data(s, r));
  const differentiable = specs.map((s) => !(!Array.isArray(s) && (s.int !== undefined || s.noGrad)));
  const make = (vals: (Float64Array | Int32Array)[]) => vals.map((v, i) => {
    const t = fromHost(b64, v, shapeOf(specs[i]));
    if (differentiable[i]) t.requiresGrad_();
    return t;
  });
  const xs = make(values);
  const out = f(...xs);
  const weights = fromHost(b64, Float64Array.from({ length: out.size }, () => 2 * r() - 1), out.shape);
  out.mul(weights).sum().backward();
  const lossAt = (vals: (Float64Array | Int32Array)[]) => rg.noGrad(() => {
    const o = f(...make(vals));
    return (b64.read(o.mul(weights).sum().buf) as Float64Array)[0];
  });
  let worst = 0;
  values.forEach((v, i) => {
    if (!differentiable[i]) return;
    const analytic = b64.read(xs[i].grad!.buf) as Float64Array;
    for (let j = 0; j < v.length; j++) {
      const h = 1e-6 * Math.max(1, Math.abs(v[j]));
      const plus = values.map((a) => a.slice()), minus = values.map((a) => a.slice());
      plus[i][j] += h;
      minus[i][j] -= h;
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * h);
      worst = Math.max(worst, Math.abs(analytic[j] - numeric) / Math.max(1, Math.abs(numeric)));
    }
  });
  return worst;
}

const TOL = 1e-6;
const cases: [string, (...xs: Tensor[]) => Tensor, Spec[]][] = [
  ['add broadcast', (a, b) => a.add(b), [[3, 1, 4], [2, 1]]],
  ['add scalar', (a) => a.add(2.5), [[5]]],
  ['add alpha', (a, b) => a.add(b, { alpha: -0.5 }), [[2, 3], [3]]],
  ['sub broadcast', (a, b) => a.sub(b), [[4, 3], [4, 1]]],
  ['rsub scalar', (a) => rg.sub(1.5, a), [[3, 2]]],
  ['mul broadcast', (a, b) => a.mul(b), [[2, 3, 4], [3, 1]]],
  ['mul scalar', (a) => a.mul(-3), [[4]]],
  ['div broadcast', (a, b) => a.div(b), [[3, 4], { shape: [4], positive: true }]],
  ['div by scalar tensor', (a, b) => a.div(b), [[2, 3], { shape: [], positive: true }]],
  ['pow tensor', (a, b) => a.pow(b), [{ shape: [2, 3], positive: true }, [3]]],
  ['pow scalar', (a) => a.pow(2.5), [{ shape: [5], positive: true }]],
  ['neg', (a) => a.neg(), [[4, 2]]],
  ['exp', (a) => a.exp(), [[6]]],
  ['log', (a) => a.log(), [{ shape: [6], positive: true }]],
  ['log1p', (a) => a.log1p(), [{ shape: [6], positive: true }]],
  ['sqrt', (a) => a.sqrt(), [{ shape: [6], positive: true }]],
  ['rsqrt', (a) => a.rsqrt(), [{ shape: [6], positive: true }]],
  ['abs', (a) => a.abs(), [{ shape: [7], away: true }]],
  ['sin', (a) => a.sin(), [[6]]],
  ['cos', (a) => a.cos(), [[6]]],
  ['tanh', (a) => a.tanh(), [[2, 5]]],
  ['sigmoid', (a) => a.sigmoid(), [[2, 5]]],
  ['relu', (a) => a.relu(), [{ shape: [3, 4], away: true }]],
  ['gelu', (a) => a.gelu(), [[3, 4]]],
  ['leakyRelu', (a) => a.leakyRelu(0.2), [{ shape: [3, 4], away: true }]],
  ['softplus', (a) => a.softplus(2, 1), [{ shape: [3, 4], away: true }]],
  ['clamp', (a) => a.clamp(-0.5, 0.6), [{ shape: [12], away: true }]],
  ['square', (a) => a.square(), [[5]]],
  ['reciprocal', (a) => a.reciprocal(), [{ shape: [5], positive: true }]],
  ['maximum', (a, b) => a.maximum(b), [[3, 4], [4]]],
  ['minimum', (a, b) => rg.minimum(a, b), [[3, 1], [1, 4]]],
  ['where', (c, a, b) => rg.where(c.gt(0), a, b), [{ shape: [3, 4], noGrad: true }, [3, 4], [4]]],
  ['maskedFill', (a, m) => a.maskedFill(m.gt(0), -2), [[3, 4], { shape: [1, 4], noGrad: true }]],
  ['sum all', (a) => a.sum(), [[3, 4]]],
  ['sum dims keepdim', (a) => a.sum([0, -1], { keepdim: true }), [[2, 3, 4]]],
  ['sum negative dim', (a) => a.sum(-2), [[2, 3, 4]]],
  ['mean', (a) => a.mean(1), [[3, 5]]],
  ['mean all', (a) => a.mean(), [[3, 5]]],
  ['max all', (a) => a.max(), [[3, 5]]],
  ['max dim', (a) => a.max(1).values, [[3, 5]]],
  ['min dim keepdim', (a) => a.min(0, { keepdim: true }).values, [[3, 5]]],
  ['var', (a) => a.var(1), [[3, 5]]],
  ['var all, correction 0', (a) => a.var(null, { correction: 0 }), [[3, 5]]],
  ['std', (a) => a.std(0, { keepdim: true }), [[4, 3]]],
  ['logsumexp', (a) => a.logsumexp(-1), [[3, 5]]],
  ['norm', (a) => a.norm(), [[3, 5]]],
  ['norm dim', (a) => a.norm(2, 1), [[3, 5]]],
  ['norm 1', (a) => a.norm(1), [{ shape: [7], away: true }]],
  ['softmax last', (a) => a.softmax(-1), [[3, 5]]],
  ['softmax dim 0', (a) => a.softmax(0), [[3, 5]]],
  ['logSoftmax', (a) => a.logSoftmax(1), [[2, 3, 4]]],
  ['matmul 2-d', (a, b) => a.matmul(b), [[3, 4], [4, 5]]],
  ['matmul 1-d · 1-d', (a, b) => a.matmul(b), [[4], [4]]],
  ['matmul 1-d · 2-d', (a, b) => a.matmul(b), [[4], [4, 3]]],
  ['matmul 2-d · 1-d', (a, b) => a.matmul(b), [[3, 4], [4]]],
  ['matmul batched', (a, b) => a.matmul(b), [[2, 3, 4], [2, 4, 5]]],
  ['matmul batch broadcast', (a, b) => a.matmul(b), [[2, 1, 3, 4], [3, 4, 2]]],
  ['matmul shared matrix', (a, b) => a.matmul(b), [[3, 4], [2, 4, 2]]],
  ['matmul rows · matrix', (a, b) => a.matmul(b), [[2, 3, 4], [4, 5]]],
  ['linear', (x, w, b) => rg.linear(x, w, b), [[2, 3, 4], [5, 4], [5]]],
  ['linear without bias', (x, w) => rg.linear(x, w), [[3, 4], [2, 4]]],
  ['reshape', (a) => a.reshape([4, -1]).mul(a.reshape([4, 3])), [[2, 6]]],
  ['view then sum', (a) => a.view([3, 4]).sum(0), [[12]]],
  ['permute', (a) => a.permute(2, 0, 1), [[2, 3, 4]]],
  ['transpose', (a) => a.transpose(0, -1), [[2, 3, 4]]],
  ['t', (a) => a.t(), [[3, 4]]],
  ['squeeze / unsqueeze', (a) => a.squeeze(1).unsqueeze(0), [[3, 1, 4]]],
  ['expand', (a) => a.expand(2, 3, 4), [[3, 1]]],
  ['flatten', (a) => a.flatten(1), [[2, 3, 4]]],
  ['narrow', (a) => a.narrow(1, 1, 2), [[3, 5]]],
  ['slice with step', (a) => a.slice(-1, 1, 7, 2), [[2, 8]]],
  ['select', (a) => a.select(1, -1), [[3, 4]]],
  ['at', (a) => a.at(1, 2), [[3, 4]]],
  ['cat', (a, b) => rg.cat([a, b, a], 1), [[2, 3], [2, 1]]],
  ['stack', (a, b) => rg.stack([a, b], -1), [[2, 3], [2, 3]]],
  ['split', (a) => rg.cat(a.split(2, 1).reverse(), 1), [[2, 5]]],
  ['chunk', (a) => a.chunk(3, 0)[1], [[7, 2]]],
  ['indexSelect', (a, i) => a.indexSelect(1, i), [[3, 4], { shape: [6], int: 4 }]],
  ['gather', (a, i) => a.gather(1, i), [[3, 4], { shape: [3, 5], int: 4 }]],
  ['scatterAdd', (a, i, s) => a.scatterAdd(0, i, s), [[4, 3], { shape: [6, 3], int: 4 }, [6, 3]]],
  ['F.conv2d', (x, w, b) => rg.F.conv2d(x, w, b, { stride: [2, 1], padding: 1, dilation: [1, 2] }), [[2, 3, 5, 6], [4, 3, 3, 2], [4]]],
  ['F.maxPool2d', (x) => rg.F.maxPool2d(x, 2, { stride: 1, padding: 1 }), [[1, 2, 4, 5]]],
  ['F.avgPool2d', (x) => rg.F.avgPool2d(x, [2, 3], { padding: [1, 1], countIncludePad: false }), [[2, 2, 4, 5]]],
  ['F.convTranspose2d stride, padding, outputPadding, dilation', (x, w, b) => rg.F.convTranspose2d(x, w, b, { stride: [2, 1], padding: 1, outputPadding: [1, 0], dilation: [1, 2] }), [[2, 3, 3, 4], [3, 2, 3, 2], [2]]],
  ['F.convTranspose2d outputPadding 2 at stride 1 (dilation 3: x padded)', (x, w, b) => rg.F.convTranspose2d(x, w, b, { outputPadding: [2, 0], dilation: [3, 1] }), [[1, 2, 3, 3], [2, 2, 2, 3], [2]]],
  ['F.convTranspose2d unbatched, no bias', (x, w) => rg.F.convTranspose2d(x, w, null, { stride: 2 }), [[2, 3, 2], [2, 3, 2, 2]]],
  ['F.conv1d stride, padding, dilation', (x, w, b) => rg.F.conv1d(x, w, b, { stride: 2, padding: 1, dilation: 2 }), [[2, 3, 7], [4, 3, 3], [4]]],
  ['F.conv1d unbatched, no bias', (x, w) => rg.F.conv1d(x, w), [[2, 5], [3, 2, 2]]],
  ['F.interpolate nearest 2-d to a size', (x) => rg.F.interpolate(x, { size: [5, 7] }), [[2, 2, 3, 4]]],
  ['F.interpolate nearest 1-d scaleFactor 2.1', (x) => rg.F.interpolate(x, { scaleFactor: 2.1 }), [[1, 2, 5]]],
  ['F.interpolate nearest downsampling', (x) => rg.F.interpolate(x, { scaleFactor: [0.5, 0.7] }), [[1, 2, 5, 6]]],
  ['F.interpolate bilinear scaleFactor 1.7', (x) => rg.F.interpolate(x, { scaleFactor: 1.7, mode: 'bilinear' }), [[2, 2, 3, 4]]],
  ['F.interpolate bilinear alignCorners, to a size', (x) => rg.F.interpolate(x, { size: [5, 2], mode: 'bilinear', alignCorners: true }), [[1, 3, 4, 3]]],
  ['F.groupNorm with affine', (x, w, b) => rg.F.groupNorm(x, 3, w, b), [[2, 6, 3], [6], [6]]],
  ['F.groupNorm without affine', (x) => rg.F.groupNorm(x, 2, null, null, 1e-3), [[2, 4, 2, 2]]],
  ['F.dropout2d training (one mask: the seed is set at each call)', (x) => {
    rg.manualSeed(5);
    return rg.F.dropout2d(x, 0.4, true);
  }, [[3, 4, 2, 2]]],
  ['F.layerNorm', (x, w, b) => rg.F.layerNorm(x, [4], w, b), [[3, 4], [4], [4]]],
  ['F.layerNorm over two dims, no affine', (x) => rg.F.layerNorm(x, [2, 3]), [[2, 2, 3]]],
  ['F.batchNorm training', (x, w, b) => rg.F.batchNorm(x, null, null, { weight: w, bias: b, training: true }), [[4, 3, 2], [3], [3]]],
  ['F.embedding', (w, i) => rg.F.embedding(i, w), [[5, 3], { shape: [2, 4], int: 5 }]],
  ['F.mseLoss none', (a, b) => rg.F.mseLoss(a, b, { reduction: 'none' }), [[3, 4], [3, 4]]],
  ['F.mseLoss mean (fused), target gradient too', (a, b) => rg.F.mseLoss(a, b), [[3, 4], [3, 4]]],
  ['F.l1Loss sum', (a, b) => rg.F.l1Loss(a, b, { reduction: 'sum' }), [{ shape: [6], away: true }, { shape: [6], noGrad: true }]],
  ['F.huberLoss none', (a, b) => rg.F.huberLoss(a, b, { reduction: 'none', delta: 0.5 }), [[8], { shape: [8], noGrad: true }]],
  ['F.binaryCrossEntropy', (p, t) => rg.F.binaryCrossEntropy(p.sigmoid(), t), [[6], { shape: [6], noGrad: true }]],
  ['F.binaryCrossEntropy none', (p, t) => rg.F.binaryCrossEntropy(p.sigmoid(), t.sigmoid(), { reduction: 'none' }), [[6], { shape: [6], noGrad: true }]],
  ['F.binaryCrossEntropyWithLogits sum', (x, t) => rg.F.binaryCrossEntropyWithLogits(x, t.sigmoid(), { reduction: 'sum' }), [{ shape: [6], away: true }, { shape: [6], noGrad: true }]],
  ['F.crossEntropy (fused)', (x, t) => rg.F.crossEntropy(x, t), [[5, 4], { shape: [5], int: 4 }]],
  ['F.crossEntropy none', (x, t) => rg.F.crossEntropy(x, t, { reduction: 'none' }), [[5, 4], { shape: [5], int: 4 }]],
  ['F.nllLoss', (x, t) => rg.F.nllLoss(x.logSoftmax(1), t), [[5, 4], { shape: [5], int: 4 }]],
  ['F.cosineSimilarity', (a, b) => rg.F.cosineSimilarity(a, b), [[3, 4], [3, 4]]],
  ['a composite: x·σ(x) − mean(x²)', (a) => a.mul(a.sigmoid()).sub(a.square().mean()), [[3, 4]]],
  ['a tensor used twice', (a, b) => a.mul(b).add(a), [[3], [3]]],
];

describe('autograd: every operation against finite differences (float64, reference)', () => {
  it.each(cases)('%s', (_, f, specs) => {
    expect(gradcheck(f, specs)).toBeLessThan(TOL);
  });
});
