// The PyTorch golden check of tensor operations and autograd (test/golden/make_autograd_golden.py writes
// test/golden/autograd.json): every operation's output and the gradients of a weighted sum of it, models that need the
// graph trained 20 steps from PyTorch's initial weights (a residual MLP, two inputs concatenated, a siamese pair
// sharing weights, a custom loss), and the gradient with respect to the input. Each check returns null when it
// passes, else what differs. test/autograd-golden.test.ts runs it on the reference and CPU backends; on a GPU machine
// bench/gpu-autograd-check.mjs runs it on 'cuda' (it needs no test tools).
import * as rg from '../index.js';

export interface GoldenInput { shape: number[]; data?: number[]; int?: number[]; grad?: boolean; gradient?: number[] }
export interface GoldenOp { name: string; inputs: GoldenInput[]; shape: number[]; output: number[]; weights: number[] }
export interface GoldenWeights { [key: string]: { shape: number[]; data: number[] } }
export interface GoldenModel { name: string; initial: GoldenWeights; losses: number[]; final: GoldenWeights }
/** A layer built as PyTorch built it: each state-dict entry with its shape, PyTorch's initial values and the bound of its
 * uniform initialisation (null: a constant one), and the forward of an input with those values. */
export interface GoldenLayer {
  name: string;
  state: { [key: string]: { shape: number[]; data: number[]; bound: number | null } };
  input: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
}
export interface AutogradGolden {
  ops: GoldenOp[];
  models: GoldenModel[];
  inputGradient: { initial: GoldenWeights; x: number[]; loss: number; gradient: number[] };
  layers: GoldenLayer[];
}

type T = rg.Tensor;
export const OPS: Record<string, (...xs: T[]) => T> = {
  'add broadcast': (a, b) => a.add(b),
  'add size-1': (a, b) => a.add(b),
  'add scalar': (a) => a.add(2.5),
  'add alpha': (a, b) => a.add(b, { alpha: -0.5 }),
  'sub broadcast': (a, b) => a.sub(b),
  'rsub scalar': (a) => rg.sub(1.5, a),
  'mul broadcast': (a, b) => a.mul(b),
  'mul scalar': (a) => a.mul(-3),
  'div broadcast': (a, b) => a.div(b),
  'pow tensor': (a, b) => a.pow(b),
  'pow scalar': (a) => a.pow(2.5),
  neg: (a) => a.neg(), exp: (a) => a.exp(), log: (a) => a.log(), log1p: (a) => a.log1p(), sqrt: (a) => a.sqrt(),
  rsqrt: (a) => a.rsqrt(), abs: (a) => a.abs(), sign: (a) => a.sign(), sin: (a) => a.sin(), cos: (a) => a.cos(),
  tanh: (a) => a.tanh(), sigmoid: (a) => a.sigmoid(), relu: (a) => a.relu(), gelu: (a) => a.gelu(),
  leakyRelu: (a) => a.leakyRelu(0.2),
  softplus: (a) => a.softplus(2, 1),
  clamp: (a) => a.clamp(-0.5, 0.6),
  square: (a) => a.square(), reciprocal: (a) => a.reciprocal(),
  maximum: (a, b) => a.maximum(b), minimum: (a, b) => a.minimum(b),
  eq: (a, b) => a.eq(b), lt: (a, b) => a.lt(b), ge: (a, b) => a.ge(b),
  where: (c, a, b) => rg.where(c.gt(0), a, b),
  maskedFill: (a, m) => a.maskedFill(m.gt(0), -2),
  'sum all': (a) => a.sum(),
  'sum dims keepdim': (a) => a.sum([0, -1], { keepdim: true }),
  'sum negative dim': (a) => a.sum(-2),
  'sum empty dim': (a) => a.sum(0),
  'mean dim': (a) => a.mean(1),
  'max all': (a) => a.max(),
  'max dim': (a) => a.max(1).values,
  'min dim keepdim': (a) => a.min(0, { keepdim: true }).values,
  var: (a) => a.var(1),
  'var all, correction 0': (a) => a.var(null, { correction: 0 }),
  'std keepdim': (a) => a.std(0, { keepdim: true }),
  logsumexp: (a) => a.logsumexp(-1),
  norm: (a) => a.norm(),
  'norm dim': (a) => a.norm(2, 1),
  'softmax dim 0': (a) => a.softmax(0),
  logSoftmax: (a) => a.logSoftmax(1),
  'matmul 2-d': (a, b) => a.matmul(b),
  'matmul 1-d · 1-d': (a, b) => a.matmul(b),
  'matmul 1-d · 2-d': (a, b) => a.matmul(b),
  'matmul batch broadcast': (a, b) => a.matmul(b),
  'matmul rows · matrix': (a, b) => a.matmul(b),
  linear: (x, w, b) => rg.F.linear(x, w, b),
  permute: (a) => a.permute(2, 0, 1),
  transpose: (a) => a.transpose(0, -1),
  'squeeze unsqueeze': (a) => a.squeeze(1).unsqueeze(0),
  expand: (a) => a.expand(2, 3, 4),
  flatten: (a) => a.flatten(1),
  narrow: (a) => a.narrow(1, 1, 2),
  'slice with step': (a) => a.slice(1, 1, 7, 2),
  cat: (a, b) => rg.cat([a, b, a], 1),
  'cat with an empty tensor': (a, b) => rg.cat([a, b], 0),
  stack: (a, b) => rg.stack([a, b], -1),
  chunk: (a) => a.chunk(3, 0)[1],
  indexSelect: (a, i) => a.indexSelect(1, i),
  gather: (a, i) => a.gather(1, i),
  scatterAdd: (a, i, s) => a.scatterAdd(0, i, s),
  convTranspose2d: (x, w, b) => rg.F.convTranspose2d(x, w, b),
  'convTranspose2d stride 2, padding 1, outputPadding 1, batch 3': (x, w, b) => rg.F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
  'convTranspose2d non-square, dilation 2, no bias': (x, w) => rg.F.convTranspose2d(x, w, null, { stride: [1, 2], padding: [0, 1], dilation: 2 }),
  'convTranspose2d outputPadding above the stride, below the dilation': (x, w, b) =>
    rg.F.convTranspose2d(x, w, b, { padding: 1, outputPadding: [1, 2], dilation: [2, 3] }),
  'convTranspose2d stride 3×2, outputPadding 2×1, unbatched': (x, w, b) => rg.F.convTranspose2d(x, w, b, { stride: [3, 2], padding: [1, 0], outputPadding: [2, 1] }),
  'conv1d stride 2, padding 1, batch 3': (x, w, b) => rg.F.conv1d(x, w, b, { stride: 2, padding: 1 }),
  'conv1d dilation 2, no bias, batch 1': (x, w) => rg.F.conv1d(x, w, null, { padding: 2, dilation: 2 }),
  'conv1d unbatched': (x, w, b) => rg.F.conv1d(x, w, b),
  'interpolate nearest scaleFactor 2': (x) => rg.F.interpolate(x, { scaleFactor: 2 }),
  'interpolate nearest to a size that is not a multiple': (x) => rg.F.interpolate(x, { size: [7, 3], mode: 'nearest' }),
  'interpolate nearest scaleFactor 1.5×2.1 (the factor, not the size ratio)': (x) => rg.F.interpolate(x, { scaleFactor: [1.5, 2.1] }),
  'interpolate nearest 1-d': (x) => rg.F.interpolate(x, { size: 8 }),
  'interpolate bilinear scaleFactor 2': (x) => rg.F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }),
  'interpolate bilinear size 7×3': (x) => rg.F.interpolate(x, { size: [7, 3], mode: 'bilinear', alignCorners: false }),
  'interpolate bilinear size 7×3, alignCorners': (x) => rg.F.interpolate(x, { size: [7, 3], mode: 'bilinear', alignCorners: true }),
  'interpolate bilinear scaleFactor 1.7×0.6, batch 3': (x) => rg.F.interpolate(x, { scaleFactor: [1.7, 0.6], mode: 'bilinear' }),
  'interpolate bilinear to 1×6, alignCorners': (x) => rg.F.interpolate(x, { size: [1, 6], mode: 'bilinear', alignCorners: true }),
  'groupNorm 2 groups of 2 channels': (x, w, b) => rg.F.groupNorm(x, 2, w, b),
  'groupNorm 2 groups of 3 channels, 1-d, batch 3': (x, w, b) => rg.F.groupNorm(x, 2, w, b, 1e-3),
  'groupNorm 3 groups, no affine, batch 1': (x) => rg.F.groupNorm(x, 3),
};

/** Per element |a − b| ≤ tol·(1 + |b|), NaN matching NaN; else what differs first. */
function close(got: ArrayLike<number>, want: number[], tol: number, what: string): string | null {
  if (got.length !== want.length) return `${what}: ${got.length} values, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) ? !Number.isNaN(got[i]) : !(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i]))))
      return `${what}[${i}]: ${got[i]}, PyTorch ${want[i]}`;
  }
  return null;
}

/** One operation's output (within 2e-6) and input gradients (within 1e-5) against PyTorch's. */
export function checkOp(c: GoldenOp): string | null {
  const op = OPS[c.name];
  if (!op) return `no operation for the golden case '${c.name}'`;
  const xs = c.inputs.map((inp) => inp.int
    ? rg.tensor(Int32Array.from(inp.int), inp.shape)
    : rg.tensor(inp.data!, inp.shape, { requiresGrad: inp.grad !== false }));
  const out = op(...xs);
  if (out.shape.length !== c.shape.length || out.shape.some((d, i) => d !== c.shape[i])) return `shape [${out.shape.join(', ')}], PyTorch [${c.shape.join(', ')}]`;
  const o = close(out.toArray(), c.output, 2e-6, 'output');
  if (o || !out.requiresGrad) return o;
  out.mul(rg.tensor(c.weights, c.shape)).sum().backward();
  for (const [i, inp] of c.inputs.entries()) {
    if (!inp.gradient) continue;
    const g = close(xs[i].grad ? xs[i].grad!.toArray() : new Float32Array(inp.gradient.length), inp.gradient, 1e-5, `gradient of input ${i}`);
    if (g) return g;
  }
  return null;
}

// ---- the models, as PyTorch's, with the same names ----

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + 0.9 * seed + 0.3) * 1.4);
const data = (rows: number, cols: number, seed: number) => rg.tensor(values(rows * cols, seed), [rows, cols]);
const labels = (rows: number, classes: number, seed: number) => rg.tensor(Int32Array.from({ length: rows }, (_, i) => (i * 5 + seed) % classes), [rows]);

class Residual extends rg.Module {
  fc1 = new rg.Linear(6, 6);
  fc2 = new rg.Linear(6, 6);
  out = new rg.Linear(6, 3);
  forward(x: T) {
    return this.out.forward(x.add(this.fc2.forward(this.fc1.forward(x).relu())).relu());
  }
}
class TwoInputs extends rg.Module {
  fa = new rg.Linear(3, 4);
  fb = new rg.Linear(5, 4);
  out = new rg.Linear(8, 2);
  forward(a: T, b: T) {
    return this.out.forward(rg.cat([this.fa.forward(a).relu(), this.fb.forward(b).tanh()], 1));
  }
}
class Siamese extends rg.Module {
  enc = new rg.Sequential([new rg.Linear(4, 8), new rg.Tanh(), new rg.Linear(8, 3)]);
  forward(x1: T, x2: T): [T, T] {
    return [this.enc.forward(x1), this.enc.forward(x2)];
  }
}

function load(m: rg.Module, w: GoldenWeights): void {
  m.loadStateDict(Object.fromEntries(Object.entries(w).map(([k, v]) => [k, rg.tensor(v.data, v.shape)])));
}
function weightsClose(m: rg.Module, w: GoldenWeights, tol: number): string | null {
  const sd = m.stateDict();
  for (const [k, v] of Object.entries(w)) {
    const d = close(sd[k].toArray(), v.data, tol, k);
    if (d) return d;
  }
  return null;
}

export const MODELS: Record<string, () => { model: rg.Module; opt: rg.Optimizer<{ lr: number }>; loss: (s: number) => T }> = {
  'residual MLP': () => {
    const model = new Residual();
    return { model, opt: new rg.Adam(model.parameters(), { lr: 1e-2 }), loss: (s) => rg.F.crossEntropy(model.forward(data(16, 6, s)), labels(16, 3, s)) };
  },
  'two inputs, concatenated': () => {
    const model = new TwoInputs();
    return {
      model, opt: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
      loss: (s) => rg.F.mseLoss(model.forward(data(8, 3, s), data(8, 5, s + 50)), data(8, 2, s + 90)),
    };
  },
  'siamese pair sharing weights, contrastive loss': () => {
    const model = new Siamese();
    return {
      model, opt: new rg.SGD(model.parameters(), { lr: 0.1 }),
      loss: (s) => {
        const [e1, e2] = model.forward(data(8, 4, s), data(8, 4, s + 30));
        const d = e1.sub(e2).square().sum(1).add(1e-6).sqrt();
        const same = rg.tensor(Array.from({ length: 8 }, (_, i) => (i + s) % 2), [8]);
        return same.mul(d.square()).add(rg.sub(1, same).mul(rg.sub(1, d).clamp(0).square())).mean();
      },
    };
  },
  'custom loss (log-cosh)': () => {
    const model = new rg.Sequential([new rg.Linear(5, 8), new rg.GELU(), new rg.Linear(8, 1)]);
    return {
      model, opt: new rg.Adam(model.parameters(), { lr: 5e-3 }),
      loss: (s) => {
        const e = model.forward(data(12, 5, s)).sub(data(12, 1, s + 70));
        return e.exp().add(e.neg().exp()).mul(0.5).log().mean(); // log cosh
      },
    };
  },
};

/** A model trained as PyTorch trained it: the loss of every step and the final weights within 1e-4. */
export function checkModel(c: GoldenModel): string | null {
  const make = MODELS[c.name];
  if (!make) return `no model for the golden case '${c.name}'`;
  const { model, opt, loss } = make();
  load(model, c.initial);
  const losses: number[] = [];
  for (let s = 0; s < c.losses.length; s++) {
    opt.zeroGrad();
    const l = loss(s);
    l.backward();
    opt.step();
    losses.push(l.item());
  }
  return close(losses, c.losses, 1e-4, 'losses') ?? weightsClose(model, c.final, 1e-4);
}

/** dL/dx of the residual MLP's cross-entropy, by rg.autograd.grad. */
export function checkInputGradient(g: AutogradGolden['inputGradient']): string | null {
  const model = new Residual();
  load(model, g.initial);
  const x = rg.tensor(g.x, [4, 6], { requiresGrad: true });
  const l = rg.F.crossEntropy(model.forward(x), labels(4, 3, 1));
  const [gx] = rg.autograd.grad(l, x);
  return close([l.item()], [g.loss], 1e-5, 'loss') ?? close(gx!.toArray(), g.gradient, 1e-5, 'dL/dx');
}

// ---- layers: state-dict keys, shapes and initialisation as PyTorch's, and the forward with PyTorch's initial weights ----

export const LAYERS: Record<string, () => rg.Module> = {
  'ConvTranspose2d(6→3, k=3×2, s=2, p=1, op=1)': () => new rg.ConvTranspose2d(6, 3, [3, 2], { stride: 2, padding: 1, outputPadding: 1 }),
  'ConvTranspose2d(2→5, k=3, d=2) without bias': () => new rg.ConvTranspose2d(2, 5, 3, { dilation: 2, bias: false }),
  'Conv1d(3→5, k=4, s=2, p=1)': () => new rg.Conv1d(3, 5, 4, { stride: 2, padding: 1 }),
  'GroupNorm(2, 6)': () => new rg.GroupNorm(2, 6),
  'GroupNorm(3, 6) without affine': () => new rg.GroupNorm(3, 6, { affine: false }),
  'Upsample(scaleFactor=2, nearest)': () => new rg.Upsample({ scaleFactor: 2 }),
  'Upsample(size=[5, 7], bilinear, alignCorners)': () => new rg.Upsample({ size: [5, 7], mode: 'bilinear', alignCorners: true }),
  Identity: () => new rg.Identity(3, { flag: true }),
  'Dropout2d(0.3) in eval mode': () => new rg.Dropout2d(0.3).eval(),
};

/**
 * A layer against PyTorch's: the same state-dict keys in the same order with the same shapes; each uniformly initialised
 * tensor inside PyTorch's bound and, from 30 values on, reaching past 0.9 of it (so that a bound from another fan-in,
 * 13% or more away for these layers, fails one way or the other); constant initialisations equal; and, with PyTorch's
 * initial values loaded, the same output (within 2e-6).
 */
export function checkLayer(c: GoldenLayer): string | null {
  const make = LAYERS[c.name];
  if (!make) return `no layer for the golden case '${c.name}'`;
  const layer = make();
  const sd = layer.stateDict();
  const keys = Object.keys(sd), want = Object.keys(c.state);
  if (keys.join() !== want.join()) return `state-dict keys [${keys.join(', ')}], PyTorch [${want.join(', ')}]`;
  for (const [k, v] of Object.entries(c.state)) {
    const t = sd[k];
    if (t.shape.join() !== v.shape.join()) return `${k}: shape [${t.shape.join(', ')}], PyTorch [${v.shape.join(', ')}]`;
    const got = t.toArray();
    if (v.bound === null) {
      const d = close(got, v.data, 0, `${k} (initial value)`);
      if (d) return d;
      continue;
    }
    let max = 0;
    for (const x of got) max = Math.max(max, Math.abs(x));
    if (max > v.bound * (1 + 1e-6)) return `${k}: an initial value of magnitude ${max}, beyond PyTorch's bound ${v.bound}`;
    if (got.length >= 30 && max < 0.9 * v.bound) return `${k}: initial values within ${max}, far inside PyTorch's bound ${v.bound}`;
  }
  load(layer, Object.fromEntries(Object.entries(c.state).map(([k, v]) => [k, { shape: v.shape, data: v.data }])));
  const y = layer.forward(rg.tensor(c.input.data, c.input.shape));
  if (y.shape.join() !== c.output.shape.join()) return `output shape [${y.shape.join(', ')}], PyTorch [${c.output.shape.join(', ')}]`;
  return close(y.toArray(), c.output.data, 2e-6, 'output');
}
